//! A small deterministic mutation driver for stable `cargo test`: every seed of a target's
//! corpus, then a bounded number of mutants of them (seeded PRNG, so a failure reproduces),
//! each input timed. Coverage-guided fuzzing is libFuzzer's job (fuzz/libfuzzer); this
//! catches a target that no longer builds, or crashes or hangs at once.

use std::path::Path;
use std::time::{Duration, Instant};

/// Longest time one input may take before it counts as a hang (issue 15: 1 s).
pub const MAX_INPUT_TIME: Duration = Duration::from_secs(1);

/// splitmix64: tiny, fast and good enough to pick mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose whole sequence follows from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Tokens worth inserting into JSON, base64url and DER inputs.
const DICT: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"null",
    b"true",
    b"0",
    b"-1",
    b"1e999",
    b"\\u0000",
    b"\\ud800",
    b"\"alg\"",
    b"\"jwk\"",
    b"\"kid\"",
    b"\"url\"",
    b"\"nonce\"",
    b"\"kty\"",
    b"\"crv\"",
    b"=",
    b"%",
    b"%2",
    b"+",
    b"/",
    b"-",
    b"_",
    b".",
    b"*.",
    b"xn--",
    b"mailto:",
    b"@",
    b"\x30\x80",
    b"\x30\x82\xff\xff",
    b"\x02\x01\x00",
    b"\x04\x00",
    b"\x05\x00",
    b"\x06\x03\x55\x1d\x11",
    b"\xa0\x00",
    b"\xff\xff\xff\xff",
    b"\x00",
];

/// One input derived from `base` by one to four random edits (bit flips, byte changes,
/// insertions, deletions, dictionary tokens, splices with another seed).
pub fn mutate(rng: &mut Rng, base: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut out = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = out.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] = rng.next_u64() as u8;
            }
            2 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(16));
                out.drain(i..i + n);
            }
            3 => {
                let i = rng.below(len + 1);
                let tok = DICT[rng.below(DICT.len())];
                out.splice(i..i, tok.iter().copied());
            }
            4 if len > 0 => {
                // Duplicate a chunk (grows lengths, nests structures).
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let chunk = out[i..i + n].to_vec();
                let at = rng.below(len + 1);
                out.splice(at..at, chunk);
            }
            5 if !seeds.is_empty() => {
                // Splice: our head, another seed's tail.
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                out.truncate(cut);
                out.extend_from_slice(&other[from..]);
            }
            6 if len > 0 => {
                // Printable-ASCII change, so text formats stay text.
                let i = rng.below(len);
                out[i] = b' ' + rng.below(95) as u8;
            }
            7 if len > 0 => {
                let i = rng.below(len);
                out.truncate(i);
            }
            _ => {
                let i = rng.below(len + 1);
                let b = rng.next_u64() as u8;
                out.insert(i, b);
            }
        }
    }
    out
}

/// The files of `dir`, sorted by name (missing directory: none).
pub fn read_corpus(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).expect("readable corpus file"))
        })
        .collect();
    files.sort();
    files
}

/// Bounds of one stable run.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Mutants to run after the seeds.
    pub mutants: usize,
    /// Stop generating mutants after this long (the seeds always all run).
    pub time: Duration,
    /// PRNG seed.
    pub seed: u64,
}

impl Budget {
    /// The CI budget, overridable with `COBBLE_FUZZ_MUTANTS`, `COBBLE_FUZZ_SECS` and
    /// `COBBLE_FUZZ_SEED` for longer local runs.
    pub fn from_env(default_mutants: usize) -> Self {
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        Self {
            mutants: var("COBBLE_FUZZ_MUTANTS").map_or(default_mutants, |v| v as usize),
            time: Duration::from_secs(var("COBBLE_FUZZ_SECS").unwrap_or(5)),
            seed: var("COBBLE_FUZZ_SEED").unwrap_or(0x00C0_BB1E),
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Seeds run.
    pub seeds: usize,
    /// Mutants run.
    pub mutants: usize,
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `target` on one input; a panic or an input slower than [`MAX_INPUT_TIME`] fails
/// with the input in hex, so it can be added to the corpus and a regression test.
pub fn run_one(name: &str, target: fn(&[u8]), what: &str, data: &[u8]) {
    let start = Instant::now();
    if std::panic::catch_unwind(|| target(data)).is_err() {
        panic!(
            "fuzz target {name} panicked on {what} ({} bytes): {}",
            data.len(),
            hex(data)
        );
    }
    let took = start.elapsed();
    assert!(
        took <= MAX_INPUT_TIME,
        "fuzz target {name} took {took:?} on {what} ({} bytes): {}",
        data.len(),
        hex(data)
    );
}

/// Runs `target` over `seeds` and then over mutants of them within `budget`.
pub fn run(name: &str, target: fn(&[u8]), seeds: &[Vec<u8>], budget: Budget) -> Report {
    for (i, s) in seeds.iter().enumerate() {
        run_one(name, target, &format!("seed {i}"), s);
    }
    let mut rng =
        Rng::new(budget.seed ^ name.bytes().fold(0u64, |h, b| h.rotate_left(5) ^ b as u64));
    let start = Instant::now();
    let mut done = 0;
    let empty = [Vec::new()];
    let pool = if seeds.is_empty() { &empty[..] } else { seeds };
    while done < budget.mutants && start.elapsed() < budget.time {
        let base = &pool[rng.below(pool.len())];
        let input = mutate(&mut rng, base, pool);
        run_one(name, target, &format!("mutant {done}"), &input);
        done += 1;
    }
    Report {
        seeds: seeds.len(),
        mutants: done,
    }
}
