//! The script-tag install, served first-party by the worker (`SERVE_SCRIPT`, on by
//! default): `GET /script/klaviyo-wasm.js`, `/script/klaviyo_wasm_bg.wasm` and
//! `/script/snippet.min.js` (a short-lived alias, revalidated by `ETag`), and the same
//! under `/script/<version>/` (cached for a year, `immutable`). The files are built
//! into the worker (`dist/edge/script/`, handed over by `worker.mjs`), so the shop
//! hosts nothing and the `.wasm` always goes out as `application/wasm`, the most common
//! wasm deployment error otherwise.
//!
//! The script the worker serves knows the worker: a first statement gives its
//! `<script>` element the shop's company id and the worker's URL as `data-company-id`
//! and `data-api-base` where the page set none, so the snippet needs the script's URL
//! alone.

use sha2::{Digest, Sha256};

use super::reply::{error, Reply};

/// One of the files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScriptFile {
    Js,
    Wasm,
    Snippet,
}

impl ScriptFile {
    const ALL: [ScriptFile; 3] = [ScriptFile::Js, ScriptFile::Wasm, ScriptFile::Snippet];

    pub fn name(self) -> &'static str {
        match self {
            ScriptFile::Js => "klaviyo-wasm.js",
            ScriptFile::Wasm => "klaviyo_wasm_bg.wasm",
            ScriptFile::Snippet => "snippet.min.js",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            ScriptFile::Wasm => "application/wasm",
            _ => "text/javascript; charset=utf-8",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A request for a file: its version (`None`: the unversioned alias).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub file: ScriptFile,
    pub version: Option<String>,
}

/// `/script/<file>` or `/script/<version>/<file>`, below the route prefix.
pub fn route(path: &str) -> Option<Wanted> {
    let rest = path.strip_prefix("/script/")?;
    let (version, name) = match rest.split_once('/') {
        Some((v, n)) => (Some(v.to_string()), n),
        None => (None, rest),
    };
    let file = ScriptFile::ALL.into_iter().find(|f| f.name() == name)?;
    Some(Wanted { file, version })
}

/// The files built into this worker: their digests (the `ETag`s) and the version that
/// names them (the package's version and a digest of all three).
#[derive(Clone, Debug)]
pub struct Built {
    pub version: String,
    digests: [String; 3],
}

impl Built {
    pub fn new(js: &[u8], wasm: &[u8], snippet: &[u8]) -> Built {
        let digest = |b: &[u8]| hex::encode(&Sha256::digest(b)[..8]);
        let digests = [digest(js), digest(wasm), digest(snippet)];
        let all = digest(digests.concat().as_bytes());
        Built {
            version: format!("{}-{}", env!("CARGO_PKG_VERSION"), &all[..8]),
            digests,
        }
    }
}

/// What to answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Served {
    /// The file, after `prefix` (the script's first statement; empty for the others),
    /// with these headers; no body for `HEAD`.
    File {
        file: ScriptFile,
        prefix: String,
        headers: Vec<(String, String)>,
    },
    Reply(Reply),
}

/// The answer to `wanted` (`method` GET or HEAD). `base`: the worker's own URL as the
/// page reaches it (`https://shop.example/klaviyo`); `company`: `KLAVIYO_PUBLIC_KEY`.
pub fn serve(
    wanted: &Wanted,
    built: Option<&Built>,
    if_none_match: Option<&str>,
    base: &str,
    company: Option<&str>,
) -> Served {
    let Some(built) = built else {
        return Served::Reply(error(
            404,
            "not_found",
            "Not found.",
            "the script files are not built into this worker",
            None,
        ));
    };
    if wanted
        .version
        .as_deref()
        .is_some_and(|v| v != built.version)
    {
        return Served::Reply(error(
            404,
            "not_found",
            "Not found.",
            "this worker serves only its own version of the script",
            None,
        ));
    }
    let prefix = match wanted.file {
        ScriptFile::Js => first_statement(base, company),
        _ => String::new(),
    };
    let mut tag = built.digests[wanted.file.index()].clone();
    if !prefix.is_empty() {
        tag.push('-');
        tag.push_str(&hex::encode(&Sha256::digest(prefix.as_bytes())[..4]));
    }
    let etag = format!("\"{tag}\"");
    let cache = match wanted.version {
        Some(_) => "public, max-age=31536000, immutable",
        None => "public, max-age=300",
    };
    let mut headers = vec![
        ("etag".to_string(), etag.clone()),
        ("cache-control".to_string(), cache.to_string()),
        // The script fetches the .wasm in CORS mode; the files are public.
        ("access-control-allow-origin".to_string(), "*".to_string()),
        (
            "x-klaviyo-script-version".to_string(),
            built.version.clone(),
        ),
    ];
    if if_none_match.is_some_and(|h| {
        h.split(',')
            .any(|t| t.trim().trim_start_matches("W/") == etag)
    }) {
        let mut r = Reply::empty(304);
        r.headers = headers;
        return Served::Reply(r);
    }
    headers.insert(
        0,
        (
            "content-type".to_string(),
            wanted.file.content_type().to_string(),
        ),
    );
    Served::File {
        file: wanted.file,
        prefix,
        headers,
    }
}

/// `data-company-id` and `data-api-base` for the `<script>` element running the
/// script, where the page gave none. Where the company id is the worker's, the tracker
/// waits for the HTML to be parsed (`data-wait-for-init`): the snippet's tag takes no
/// attributes, so an `init` (its consent above all) is the page's only word, and it may
/// come after this async script ran.
fn first_statement(base: &str, company: Option<&str>) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let mut s = String::from("(function(d){if(d){");
    if let Some(c) = company {
        s.push_str("if(!d.companyId){d.companyId=");
        s.push_str(&q(c));
        s.push_str(";d.waitForInit=\"\";}");
    }
    s.push_str("d.apiBase=d.apiBase||");
    s.push_str(&q(base));
    s.push_str(";}})(document.currentScript&&document.currentScript.dataset);\n");
    s
}

#[cfg(test)]
#[path = "script_tests.rs"]
mod tests;
