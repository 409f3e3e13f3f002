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
/// script, where the page gave none.
fn first_statement(base: &str, company: Option<&str>) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let mut s = String::from("(function(d){if(d){");
    if let Some(c) = company {
        s.push_str("d.companyId=d.companyId||");
        s.push_str(&q(c));
        s.push(';');
    }
    s.push_str("d.apiBase=d.apiBase||");
    s.push_str(&q(base));
    s.push_str(";}})(document.currentScript&&document.currentScript.dataset);\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built() -> Built {
        Built::new(b"console.log(1)", b"\0asm\x01\0\0\0", b"(function(){})()")
    }

    fn file(s: Served) -> (ScriptFile, String, Vec<(String, String)>) {
        match s {
            Served::File {
                file,
                prefix,
                headers,
            } => (file, prefix, headers),
            Served::Reply(r) => panic!("{r:?}"),
        }
    }

    fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_three_files_under_the_alias_and_the_version() {
        let b = built();
        assert!(b
            .version
            .starts_with(concat!(env!("CARGO_PKG_VERSION"), "-")));
        for f in ScriptFile::ALL {
            let alias = route(&format!("/script/{}", f.name())).expect("route");
            assert_eq!(
                alias,
                Wanted {
                    file: f,
                    version: None
                }
            );
            let (_, _, h) = file(serve(
                &alias,
                Some(&b),
                None,
                "https://shop.example/klaviyo",
                Some("AbC123"),
            ));
            assert_eq!(get(&h, "cache-control"), Some("public, max-age=300"));
            assert_eq!(get(&h, "content-type"), Some(f.content_type()));
            let v = route(&format!("/script/{}/{}", b.version, f.name())).expect("route");
            let (_, _, h) = file(serve(
                &v,
                Some(&b),
                None,
                "https://shop.example/klaviyo",
                Some("AbC123"),
            ));
            assert_eq!(
                get(&h, "cache-control"),
                Some("public, max-age=31536000, immutable")
            );
        }
        assert_eq!(ScriptFile::Wasm.content_type(), "application/wasm");
        for bad in [
            "/script/",
            "/script/other.js",
            "/script/a/b/klaviyo-wasm.js",
            "/scripts/klaviyo-wasm.js",
        ] {
            assert_eq!(route(bad), None, "{bad}");
        }
    }

    #[test]
    fn another_version_is_not_served() {
        let w = route("/script/0.0.1-deadbeef/klaviyo-wasm.js").expect("route");
        match serve(&w, Some(&built()), None, "https://x", None) {
            Served::Reply(r) => assert_eq!(r.status, 404),
            other => panic!("{other:?}"),
        }
        match serve(
            &route("/script/klaviyo-wasm.js").expect("route"),
            None,
            None,
            "https://x",
            None,
        ) {
            Served::Reply(r) => assert_eq!(r.status, 404),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_matching_etag_is_not_modified() {
        let b = built();
        let w = route("/script/klaviyo_wasm_bg.wasm").expect("route");
        let (_, _, h) = file(serve(&w, Some(&b), None, "https://x", None));
        let etag = get(&h, "etag").expect("etag").to_string();
        for inm in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"other\", {etag}"),
        ] {
            match serve(&w, Some(&b), Some(&inm), "https://x", None) {
                Served::Reply(r) => assert_eq!(r.status, 304, "{inm}"),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            serve(&w, Some(&b), Some("\"other\""), "https://x", None),
            Served::File { .. }
        ));
    }

    #[test]
    fn the_script_knows_the_worker_and_its_etag_follows_what_it_says() {
        let b = built();
        let w = route("/script/klaviyo-wasm.js").expect("route");
        let (_, prefix, h1) = file(serve(
            &w,
            Some(&b),
            None,
            "https://shop.example/klaviyo",
            Some("AbC123"),
        ));
        assert_eq!(
            prefix,
            "(function(d){if(d){d.companyId=d.companyId||\"AbC123\";d.apiBase=d.apiBase||\"https://shop.example/klaviyo\";}})(document.currentScript&&document.currentScript.dataset);\n"
        );
        let (_, _, h2) = file(serve(
            &w,
            Some(&b),
            None,
            "https://www.shop.example/klaviyo",
            Some("AbC123"),
        ));
        assert_ne!(get(&h1, "etag"), get(&h2, "etag"));
        // A base that would break out of the string is quoted.
        let (_, prefix, _) = file(serve(&w, Some(&b), None, "https://x/\"</script>", None));
        assert!(prefix.contains(r#""https://x/\"</script>""#));
        // The other files are as built.
        let (_, prefix, _) = file(serve(
            &route("/script/snippet.min.js").expect("route"),
            Some(&b),
            None,
            "https://x",
            None,
        ));
        assert!(prefix.is_empty());
    }
}
