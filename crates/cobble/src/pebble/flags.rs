//! Command lines as Go's `flag` package reads them, so that `pebble` and
//! `pebble-challtestsrv` take their single-dash flags exactly: `-name value`,
//! `-name=value`, `--name value`; a boolean flag takes no separate value (`-strict`,
//! `-strict=false`); `--` ends the flags; `-h`/`-help` asks for the usage.

use std::collections::BTreeMap;

/// One flag a program takes.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    /// The name, without dashes.
    pub name: &'static str,
    /// `true` for a boolean flag.
    pub boolean: bool,
    /// The value when the flag is not given.
    pub default: &'static str,
    /// The line `-h` prints.
    pub usage: &'static str,
}

/// Why a command line was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    /// `-h`, `-help`: print the usage and stop (Go exits 0).
    #[error("help requested")]
    Help,
    /// A flag the program does not take (Go's wording).
    #[error("flag provided but not defined: -{0}")]
    Unknown(String),
    /// A flag whose value is missing at the end of the line.
    #[error("flag needs an argument: -{0}")]
    MissingValue(String),
    /// A boolean flag with a value that is not a boolean.
    #[error("invalid boolean value {value:?} for -{name}")]
    BadBool {
        /// The flag.
        name: String,
        /// What was given.
        value: String,
    },
    /// Words after the flags (Pebble refuses them).
    #[error("invalid command line arguments: {0}")]
    Positional(String),
}

/// Parsed flags: every flag's value, the default where not given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed(BTreeMap<&'static str, String>);

impl Parsed {
    /// The value of flag `name` (one of the program's flags).
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or_default()
    }

    /// The value of boolean flag `name`.
    pub fn flag(&self, name: &str) -> bool {
        parse_bool(self.get(name)).unwrap_or(false)
    }
}

/// Go's strconv.ParseBool.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Reads `args` (without the program name) against `flags`.
pub fn parse(flags: &[Flag], args: &[String]) -> Result<Parsed, FlagError> {
    let mut values: BTreeMap<&'static str, String> = flags
        .iter()
        .map(|f| (f.name, f.default.to_owned()))
        .collect();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            break;
        }
        let Some(body) = arg.strip_prefix('-').filter(|b| !b.is_empty()) else {
            return Err(FlagError::Positional(args[i - 1..].join(" ")));
        };
        let body = body.strip_prefix('-').unwrap_or(body);
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            return Err(FlagError::Unknown(body.to_owned()));
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (body, None),
        };
        let Some(flag) = flags.iter().find(|f| f.name == name) else {
            if name == "h" || name == "help" {
                return Err(FlagError::Help);
            }
            return Err(FlagError::Unknown(name.to_owned()));
        };
        let value = if flag.boolean {
            let v = inline.unwrap_or_else(|| "true".to_owned());
            parse_bool(&v).ok_or_else(|| FlagError::BadBool {
                name: name.to_owned(),
                value: v.clone(),
            })?;
            v
        } else {
            match inline {
                Some(v) => v,
                None => {
                    let v = args
                        .get(i)
                        .ok_or_else(|| FlagError::MissingValue(name.to_owned()))?;
                    i += 1;
                    v.clone()
                }
            }
        };
        values.insert(flag.name, value);
    }
    if i < args.len() {
        return Err(FlagError::Positional(args[i..].join(" ")));
    }
    Ok(Parsed(values))
}

/// The usage text Go prints for `flags`.
pub fn usage(program: &str, flags: &[Flag]) -> String {
    let mut out = format!("Usage of {program}:\n");
    let mut sorted: Vec<&Flag> = flags.iter().collect();
    sorted.sort_by_key(|f| f.name);
    for f in sorted {
        let kind = if f.boolean { "" } else { " string" };
        out.push_str(&format!("  -{}{kind}\n    \t{}", f.name, f.usage));
        if !f.boolean && !f.default.is_empty() {
            out.push_str(&format!(" (default {:?})", f.default));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: &[Flag] = &[
        Flag {
            name: "config",
            boolean: false,
            default: "test/config/pebble-config.json",
            usage: "config file",
        },
        Flag {
            name: "strict",
            boolean: true,
            default: "false",
            usage: "strict mode",
        },
        Flag {
            name: "dnsserver",
            boolean: false,
            default: "",
            usage: "dns",
        },
    ];

    fn run(args: &[&str]) -> Result<Parsed, FlagError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(FLAGS, &args)
    }

    #[test]
    fn go_flag_forms() {
        let p = run(&["-config", "a.json", "-strict", "--dnsserver=[::1]:53"]).unwrap();
        assert_eq!(p.get("config"), "a.json");
        assert!(p.flag("strict"));
        assert_eq!(p.get("dnsserver"), "[::1]:53");
        let p = run(&[]).unwrap();
        assert_eq!(p.get("config"), "test/config/pebble-config.json");
        assert!(!p.flag("strict"));
        assert!(!run(&["-strict=false"]).unwrap().flag("strict"));
        assert_eq!(run(&["-dnsserver", ""]).unwrap().get("dnsserver"), "");
        assert_eq!(
            run(&["-config=", "--", "x"]).unwrap_err(),
            FlagError::Positional("x".into())
        );
    }

    #[test]
    fn go_flag_errors() {
        let rows: &[(&[&str], FlagError)] = &[
            (&["-nope"], FlagError::Unknown("nope".into())),
            (&["--config"], FlagError::MissingValue("config".into())),
            (
                &["-strict=maybe"],
                FlagError::BadBool {
                    name: "strict".into(),
                    value: "maybe".into(),
                },
            ),
            // A boolean flag takes no separate value: `false` is left over, as in Go.
            (&["-strict", "false"], FlagError::Positional("false".into())),
            (&["-h"], FlagError::Help),
            (&["-help"], FlagError::Help),
            (&["---config", "x"], FlagError::Unknown("-config".into())),
        ];
        for (args, want) in rows {
            assert_eq!(&run(args).unwrap_err(), want, "{args:?}");
        }
    }

    #[test]
    fn usage_lists_flags_sorted_with_defaults() {
        let u = usage("pebble", FLAGS);
        assert!(u.starts_with("Usage of pebble:\n  -config string\n"), "{u}");
        assert!(u.contains("(default \"test/config/pebble-config.json\")"));
        assert!(u.contains("  -strict\n"));
    }
}
