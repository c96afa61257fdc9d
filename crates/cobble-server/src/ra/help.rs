//! The page a `userActionRequired` problem points at (its `instance`): in plain words,
//! what the operator still needs before the account can have certificates issued.

use crate::state::AppState;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// GET /help/account/{id}. Account ids are random (128 bits), so the page reveals nothing
/// to someone who does not already hold the account URL.
pub async fn account(State(s): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let base = s.base_url(req.headers(), req.uri());
    let html = |status: StatusCode, title: &str, body: String| {
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            format!(
                "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title></head>\n<body><h1>{t}</h1>\n{body}</body></html>\n",
                t = escape(title)
            ),
        )
            .into_response()
    };
    let account = match s.store.account(&id).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return html(
                StatusCode::NOT_FOUND,
                "No such account",
                format!("<p>There is no ACME account {}.</p>\n", escape(&id)),
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "help page: store failure");
            return html(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again later",
                "<p>The server could not read its records; try again in a moment.</p>\n".into(),
            );
        }
    };
    match super::may_act(&s, &base, &account).await {
        Ok(_) => html(
            StatusCode::OK,
            "Nothing is needed",
            format!(
                "<p>ACME account {} may order certificates: nothing is waiting for the operator.</p>\n",
                escape(&account.id)
            ),
        ),
        Err(e) => {
            let p = &e.problem;
            let code = p.code.map_or("", |c| c.as_str());
            html(
                StatusCode::OK,
                "Waiting for the operator",
                format!(
                    "<p>ACME account {} cannot have certificates issued yet.</p>\n<p>Result code: <code>{}</code></p>\n<p>{}</p>\n<p>What to do: contact the operator of this CA with the account URL and the result code above. Once they have done what is needed, retry your request: nothing needs to change on your side.</p>\n",
                    escape(&account.id),
                    escape(code),
                    escape(&p.detail)
                ),
            )
        }
    }
}
