use super::*;
use serde_json::{json, Value};

/// A job of entries, each a profile email and its events' names.
fn job(entries: &[(&str, &[&str])]) -> String {
    let data: Vec<Value> = entries
        .iter()
        .map(|(email, events)| {
            json!({"type": "event-bulk-create", "attributes": {
                "profile": {"data": {"type": "profile", "attributes": {"email": email}}},
                "events": {"data": events.iter().map(|name| json!({"type": "event", "attributes": {
                    "metric": {"data": {"type": "metric", "attributes": {"name": name}}},
                    "properties": {"value": 9.99}, "unique_id": format!("u-{name}"),
                    "time": "2026-12-01T10:00:00Z"}})).collect::<Vec<_>>()}}})
        })
        .collect();
    json!({"data": {"type": "event-bulk-create-job", "attributes": {"events-bulk-create": {"data": data}}}})
        .to_string()
}

/// Klaviyo's 400 with one error per pointer.
fn refusal(pointers: &[&str]) -> String {
    let errors: Vec<Value> = pointers
        .iter()
        .map(|p| json!({"id": "e", "code": "invalid", "title": "Invalid input.", "detail": "bad", "source": {"pointer": p}}))
        .collect();
    json!({ "errors": errors }).to_string()
}

/// Per entry of a written job: its email and its events' names.
fn shape(job: &str) -> Vec<(String, Vec<String>)> {
    let v: Value = serde_json::from_str(job).unwrap();
    v["data"]["attributes"]["events-bulk-create"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let a = &e["attributes"];
            let email = a["profile"]["data"]["attributes"]["email"]
                .as_str()
                .unwrap();
            let names = a["events"]["data"].as_array().unwrap().iter();
            let names = names.map(|ev| {
                ev["attributes"]["metric"]["data"]["attributes"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string()
            });
            (email.to_string(), names.collect())
        })
        .collect()
}

fn owned(entries: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    entries
        .iter()
        .map(|(e, n)| (e.to_string(), n.iter().map(|s| s.to_string()).collect()))
        .collect()
}

const ENTRY: &str = "/data/attributes/events-bulk-create/data/";

#[test]
fn an_events_pointer_takes_that_event_out_and_the_rest_go_again() {
    let body = job(&[("a@x.co", &["A1", "A2"]), ("b@x.co", &["B1"])]);
    let errors = refusal(&[&format!(
        "{ENTRY}0/attributes/events/data/1/attributes/time"
    )]);
    let d = divide(BULK_EVENTS_PATH, &body, &errors).unwrap();
    assert_eq!(
        shape(&d.kept),
        owned(&[("a@x.co", &["A1"]), ("b@x.co", &["B1"])])
    );
    assert_eq!(shape(&d.refused), owned(&[("a@x.co", &["A2"])]));
    assert_eq!(d.count, 1);
}

#[test]
fn a_profile_pointer_takes_its_entry_out_whole() {
    let body = job(&[
        ("a@x.co", &["A1"]),
        ("bad", &["B1", "B2"]),
        ("c@x.co", &["C1"]),
    ]);
    let errors = refusal(&[
        &format!("{ENTRY}1/attributes/profile/data/attributes/phone_number"),
        &format!("{ENTRY}1/attributes/events/data/0/attributes/time"),
    ]);
    let d = divide(BULK_EVENTS_PATH, &body, &errors).unwrap();
    assert_eq!(
        shape(&d.kept),
        owned(&[("a@x.co", &["A1"]), ("c@x.co", &["C1"])])
    );
    assert_eq!(shape(&d.refused), owned(&[("bad", &["B1", "B2"])]));
    assert_eq!(d.count, 2);
}

#[test]
fn each_entrys_events_keep_its_backfill_and_the_events_stay_as_sent() {
    let mut v: Value = serde_json::from_str(&job(&[("a@x.co", &["A1", "A2"])])).unwrap();
    v["data"]["attributes"]["events-bulk-create"]["data"][0]["attributes"]["backfill"] =
        json!(true);
    // An exact decimal the caller sent must reach Klaviyo as sent.
    let body = v.to_string().replace("9.99", "19.990000000000001");
    let errors = refusal(&[&format!("{ENTRY}0/attributes/events/data/0")]);
    let d = divide(BULK_EVENTS_PATH, &body, &errors).unwrap();
    for job in [&d.kept, &d.refused] {
        assert!(job.contains(r#""backfill":true,"profile""#), "{job}");
        assert!(job.contains("19.990000000000001"), "{job}");
    }
}

#[test]
fn an_answer_that_does_not_name_events_of_the_job_in_every_error_divides_nothing() {
    let body = job(&[("a@x.co", &["A1"]), ("b@x.co", &["B1"])]);
    let one = format!("{ENTRY}0/attributes/events/data/0");
    for errors in [
        // Not an error document, or no errors in it.
        "".to_string(),
        "<html>Bad Request</html>".to_string(),
        json!({"errors": []}).to_string(),
        // One error of the request as a whole beside one of an event.
        json!({"errors": [{"source": {"pointer": one}}, {"detail": "x"}]}).to_string(),
        refusal(&[&one, "/data/attributes/events-bulk-create/data"]),
        refusal(&[&one, "/data/type"]),
        json!({"errors": [{"source": {"parameter": "revision"}}]}).to_string(),
        // Past the job.
        refusal(&[&format!("{ENTRY}2/attributes/profile")]),
        refusal(&[&format!("{ENTRY}0x/attributes")]),
        // Every event named: nothing to send again.
        refusal(&[&one, &format!("{ENTRY}1/attributes/events/data/0")]),
    ] {
        assert_eq!(divide(BULK_EVENTS_PATH, &body, &errors), None, "{errors}");
    }
}

#[test]
fn an_event_index_the_entry_lacks_names_the_entry_whole() {
    let body = job(&[("a@x.co", &["A1", "A2"]), ("b@x.co", &["B1"])]);
    let errors = refusal(&[&format!("{ENTRY}0/attributes/events/data/7/attributes")]);
    let d = divide(BULK_EVENTS_PATH, &body, &errors).unwrap();
    assert_eq!(shape(&d.refused), owned(&[("a@x.co", &["A1", "A2"])]));
    assert_eq!(shape(&d.kept), owned(&[("b@x.co", &["B1"])]));
}

#[test]
fn a_body_this_reading_does_not_know_divides_nothing() {
    let mut v: Value =
        serde_json::from_str(&job(&[("a@x.co", &["A1"]), ("b@x.co", &["B1"])])).unwrap();
    v["data"]["extra"] = json!(1);
    let body = v.to_string();
    let errors = refusal(&[&format!("{ENTRY}0/attributes/events/data/0")]);
    assert_eq!(divide(BULK_EVENTS_PATH, &body, &errors), None);
}

#[test]
fn the_kept_and_refused_jobs_are_valid_bulk_jobs_for_klaviyo() {
    let body = job(&[("a@x.co", &["A1", "A2", "A3"]), ("b@x.co", &["B1"])]);
    let errors = refusal(&[
        &format!("{ENTRY}0/attributes/events/data/2/attributes/properties"),
        &format!("{ENTRY}0/attributes/events/data/0/attributes/time"),
        &format!("{ENTRY}0/attributes/events/data/2/attributes/time"),
    ]);
    let d = divide(BULK_EVENTS_PATH, &body, &errors).unwrap();
    assert_eq!(d.count, 2, "an event named twice counts once");
    assert_eq!(shape(&d.refused), owned(&[("a@x.co", &["A1", "A3"])]));
    for job in [&d.kept, &d.refused] {
        let v: Value = serde_json::from_str(job).unwrap();
        assert_eq!(v["data"]["type"], "event-bulk-create-job");
        let entries = v["data"]["attributes"]["events-bulk-create"]["data"]
            .as_array()
            .unwrap();
        assert!(entries.iter().all(|e| e["type"] == "event-bulk-create"));
    }
}

/// A subscription job of these emails, to a list.
fn subscriptions(emails: &[&str]) -> String {
    let profiles: Vec<Value> = emails
        .iter()
        .map(|e| {
            json!({"type": "profile", "attributes": {"email": e, "subscriptions":
            {"email": {"marketing": {"consent": "SUBSCRIBED"}}}}})
        })
        .collect();
    json!({"data": {"type": "profile-subscription-bulk-create-job",
        "attributes": {"custom_source": "Footer", "profiles": {"data": profiles}},
        "relationships": {"list": {"data": {"type": "list", "id": "Y6nRLr"}}}}})
    .to_string()
}

fn emails(job: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(job).unwrap();
    let list = v["data"]["attributes"]["profiles"]["data"]
        .as_array()
        .unwrap();
    list.iter()
        .map(|p| p["attributes"]["email"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_subscription_jobs_named_profiles_are_taken_out_and_the_rest_keep_the_list() {
    let body = subscriptions(&["a@x.co", "b@x.co", "c@x.co"]);
    let errors = refusal(&[
        "/data/attributes/profiles/data/1/attributes/phone_number",
        "/data/attributes/profiles/data/1/attributes/email",
    ]);
    let d = divide(BULK_SUBSCRIBE_PATH, &body, &errors).unwrap();
    assert_eq!(emails(&d.kept), ["a@x.co", "c@x.co"]);
    assert_eq!(emails(&d.refused), ["b@x.co"]);
    assert_eq!(d.count, 1);
    for job in [&d.kept, &d.refused] {
        let v: Value = serde_json::from_str(job).unwrap();
        assert_eq!(v["data"]["relationships"]["list"]["data"]["id"], "Y6nRLr");
        assert_eq!(v["data"]["attributes"]["custom_source"], "Footer");
        assert_eq!(v["data"]["type"], "profile-subscription-bulk-create-job");
    }
}

#[test]
fn a_subscription_answer_that_does_not_name_profiles_of_the_job_divides_nothing() {
    let body = subscriptions(&["a@x.co", "b@x.co"]);
    let one = "/data/attributes/profiles/data/0/attributes/email";
    for errors in [
        refusal(&[one, "/data/relationships/list/data/id"]),
        refusal(&[one, "/data/attributes/profiles/data"]),
        refusal(&["/data/attributes/profiles/data/2/attributes/email"]),
        refusal(&[one, "/data/attributes/profiles/data/1"]),
        json!({"errors": [{"source": {"pointer": one}}, {"detail": "x"}]}).to_string(),
    ] {
        assert_eq!(
            divide(BULK_SUBSCRIBE_PATH, &body, &errors),
            None,
            "{errors}"
        );
    }
}

#[test]
fn other_paths_are_never_divided() {
    let body = job(&[("a@x.co", &["A1"]), ("b@x.co", &["B1"])]);
    let errors = refusal(&[&format!("{ENTRY}0/attributes/events/data/0")]);
    for path in [
        "/api/events",
        "/api/profile-import",
        "/api/event-bulk-create-jobs/x",
    ] {
        assert_eq!(divide(path, &body, &errors), None, "{path}");
    }
}
