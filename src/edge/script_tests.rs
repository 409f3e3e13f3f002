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
        "(function(d){if(d){if(!d.companyId){d.companyId=\"AbC123\";d.waitForInit=\"\";}d.apiBase=d.apiBase||\"https://shop.example/klaviyo\";}})(document.currentScript&&document.currentScript.dataset);\n"
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
