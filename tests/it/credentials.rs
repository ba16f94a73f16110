//! Credentials over their whole life: saved as resources, referenced, renamed, moved and
//! deleted; rotated with a retest that switches every model or none while resolves go on;
//! retired versions shredded beyond recovery from the log, keyring and views files; expiry
//! on the injected clock; a wrong master key failing closed and visibly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::canary;
use crate::support::registry::MASTER_KEY;
use crate::support::{Backend, TestApp};

/// A secret with `prefix`, unique to the run, for the canary to look for.
fn secret(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn id_of(reply: &crate::support::registry::Reply) -> String {
    reply.body["id"].as_str().expect("id").to_owned()
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .expect("array")
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

/// The API key a service token resolves `model` to, through the application (so no answer
/// carrying a secret is kept for the canary), or the problem code.
async fn resolved_key(app: &TestApp, service: &str, model: &str) -> Result<String, String> {
    let principal = app::orgs::authenticate(app.registry(), service).expect("service token");
    let ctx = app::Ctx::read(principal);
    match app::resolve::resolve(app.registry(), &ctx, model).await {
        Ok(answer) => {
            let json: Value = serde_json::from_slice(&answer.value.to_json()).expect("json");
            Ok(json["credential"]["api_key"]
                .as_str()
                .expect("api key")
                .to_owned())
        }
        Err(error) => Err(error.to_problem().code),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_resources_named_referenced_moved_and_deleted() {
    let mut app = TestApp::start(Backend::Embedded).await;
    let first = secret("sk-first");
    let created = app
        .create_credential("Prod key", "openai_compatible", &first, None)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = id_of(&created);
    assert_eq!(created.body["name"], "Prod key");
    assert_eq!(created.body["state"], "active");
    assert_eq!(created.body["versions"][0]["state"], "current");
    assert!(
        created.body["preview"]
            .as_str()
            .is_some_and(|p| p.ends_with(&first[first.len() - 4..]))
    );

    // The same secret again is refused, naming the credential that holds it.
    let again = app
        .create_credential("Copy", "openai_compatible", &first, None)
        .await;
    assert_eq!(
        (again.status, again.body["code"].as_str()),
        (StatusCode::CONFLICT, Some("credential.secret_saved")),
        "{}",
        again.body
    );
    assert!(again.body["detail"].as_str().unwrap_or("").contains(&id));

    // Models reference it by id; it lists them and its last test.
    let alpha = app.add_model_on("Alpha", "llama3", &id).await;
    let beta = app.add_model_on("Beta", "llama3", &id).await;
    let shown = app.get_credential(&id).await;
    assert_eq!(
        strings(&shown.body["models"]),
        [alpha.as_str(), beta.as_str()]
    );
    assert_eq!(shown.body["used_by"], 2);
    assert_eq!(shown.body["last_test"]["class"], "ok", "{}", shown.body);

    let renamed = app
        .call(
            Method::PATCH,
            &format!("/v1/credentials/{id}"),
            Some(json!({ "name": "Prod key (EU)" })),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["name"], "Prod key (EU)");

    // Deleting is refused with the models that use it.
    let refused = app
        .call(Method::DELETE, &format!("/v1/credentials/{id}"), None)
        .await;
    assert_eq!(
        refused.body["code"], "credential.in_use",
        "{}",
        refused.body
    );
    assert_eq!(
        strings(&refused.body["models"]),
        [alpha.as_str(), beta.as_str()]
    );

    // A model moves only to a credential of its provider.
    let anthropic = app
        .create_credential("Claude", "anthropic", &secret("sk-ant-api03"), None)
        .await;
    let mismatch = app
        .edit_model(&alpha, json!({ "credential_id": id_of(&anthropic) }), None)
        .await;
    assert_eq!(
        mismatch.body["code"], "credential.provider_mismatch",
        "{}",
        mismatch.body
    );
    let second = secret("sk-second");
    let backup = app
        .create_credential("Backup", "openai_compatible", &second, None)
        .await;
    let backup_id = id_of(&backup);
    for slug in [&alpha, &beta] {
        let moved = app
            .edit_model(slug, json!({ "credential_id": backup_id }), None)
            .await;
        assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
        assert_eq!(moved.body["credential"]["id"], backup_id.as_str());
    }

    // Then it is deleted and every version of it shredded.
    let deleted = app
        .call(Method::DELETE, &format!("/v1/credentials/{id}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(deleted.body["state"], "deleted");
    assert_eq!(deleted.body["versions"][0]["state"], "shredded");
    let listed = app.list_credentials().await;
    assert!(
        listed.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|c| c["id"] != id.as_str()),
        "a deleted credential is not listed"
    );
    let onto_deleted = app
        .edit_model(&alpha, json!({ "credential_id": id }), None)
        .await;
    assert_eq!(
        onto_deleted.body["code"], "credential.not_found",
        "{}",
        onto_deleted.body
    );
    let unknown = app.get_credential("cred_nosuch").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    app.stop().await;
    canary::assert_absent(&app, &first);
    canary::assert_absent(&app, &second);
}

/// Rotation with a retest of three models: one failing switches none and names it; all
/// passing switch all three at once while resolves go on (each gets the old secret or the
/// new one, never an error); the retired version is shredded beyond recovery from the log,
/// keyring and views files; a rebuild gives the same views.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_retests_switches_all_or_none_and_shreds_the_old_version() {
    let mut app = TestApp::start(Backend::Embedded).await;
    let old = secret("sk-old");
    let created = app
        .create_credential("Shared", "openai_compatible", &old, None)
        .await;
    let id = id_of(&created);
    let models = [
        app.add_model_on("Alpha", "llama3", &id).await,
        app.add_model_on("Beta", "llama3", &id).await,
        app.add_model_on("Gamma", "strict", &id).await,
    ];
    let service = app.issue_token("runtime", "service").await;

    // A secret one model refuses: nothing switches, and the failure is named with its hint.
    let limited = secret("sk-limited");
    let refused = app.rotate_credential(&id, &limited, true).await;
    assert_eq!(
        (refused.status, refused.body["code"].as_str()),
        (StatusCode::CONFLICT, Some("credential.retest_failed")),
        "{}",
        refused.body
    );
    let failures = refused.body["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 1, "{}", refused.body);
    assert_eq!(failures[0]["model"], models[2].as_str());
    assert_ne!(failures[0]["class"], "ok");
    assert!(failures[0]["hint"].as_str().is_some_and(|h| !h.is_empty()));
    assert_eq!(app.get_credential(&id).await.body["version"], 1);
    for model in &models {
        assert_eq!(resolved_key(&app, &service, model).await, Ok(old.clone()));
    }

    // A secret all pass: every model switches in one step, while resolves go on.
    let new = secret("sk-new");
    let rotated_done = AtomicBool::new(false);
    let rotation = async {
        let reply = app.rotate_credential(&id, &new, true).await;
        rotated_done.store(true, Ordering::SeqCst);
        reply
    };
    let resolves = async {
        let (mut saw_old, mut saw_new) = (0, 0);
        while !rotated_done.load(Ordering::SeqCst) {
            match resolved_key(&app, &service, &models[0]).await {
                Ok(key) if key == old => saw_old += 1,
                Ok(key) if key == new => saw_new += 1,
                other => panic!("a resolve during the rotation got {other:?}"),
            }
            tokio::task::yield_now().await;
        }
        (saw_old, saw_new)
    };
    let (rotated, (saw_old, _)) = tokio::join!(rotation, resolves);
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    assert!(saw_old > 0, "resolves ran during the rotation");
    let tests = rotated.body["tests"].as_array().expect("tests");
    assert_eq!(tests.len(), 3);
    assert!(tests.iter().all(|t| t["result"]["passed"] == true));
    for model in &models {
        assert_eq!(resolved_key(&app, &service, model).await, Ok(new.clone()));
    }

    // The history shows both previews; the old version is shredded.
    let credential = &rotated.body["credential"];
    assert_eq!(credential["version"], 2);
    let versions = credential["versions"].as_array().expect("versions");
    let states: Vec<&str> = versions
        .iter()
        .filter_map(|v| v["state"].as_str())
        .collect();
    assert_eq!(states, ["shredded", "current"]);
    assert!(
        versions[0]["preview"]
            .as_str()
            .is_some_and(|p| p.ends_with(&old[old.len() - 4..]))
    );
    assert!(
        versions[1]["preview"]
            .as_str()
            .is_some_and(|p| p.ends_with(&new[new.len() - 4..]))
    );
    assert!(versions[0]["shredded_at"].is_string());

    // On demand: shredding again changes nothing, the current version is refused.
    let again = app
        .call(
            Method::DELETE,
            &format!("/v1/credentials/{id}/versions/1"),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    let current = app
        .call(
            Method::DELETE,
            &format!("/v1/credentials/{id}/versions/2"),
            None,
        )
        .await;
    assert_eq!(
        current.body["code"], "credential.version_in_use",
        "{}",
        current.body
    );
    let missing = app
        .call(
            Method::DELETE,
            &format!("/v1/credentials/{id}/versions/9"),
            None,
        )
        .await;
    assert_eq!(missing.body["code"], "credential.version_not_found");

    // A rebuild after the shredding gives the same views.
    let live = app.registry().views().checksum().expect("checksum");
    let log = std::sync::Arc::clone(app.registry().log());
    let rebuilt_path = app.data.path().join("rebuilt.redb");
    let rebuilt = views::rebuild(log, &rebuilt_path, |_, _| {})
        .await
        .expect("rebuild");
    assert_eq!(rebuilt, live, "a rebuild equals the live views");
    std::fs::remove_file(views::audit_path(&rebuilt_path)).expect("remove");
    std::fs::remove_file(&rebuilt_path).expect("remove");

    // With the registry stopped, the log, keyring and views files and the master key
    // cannot give the old secret back; they still give the new one.
    app.stop().await;
    let dir = app.data.path();
    let log = eventlog::EmbeddedLog::open(&dir.join("log.redb")).expect("log");
    let keyring = vault::RedbKeyring::open(dir.join("keyring.redb")).expect("keyring");
    let vault = vault::Vault::new(
        vault::MasterKey::from_base64(MASTER_KEY).expect("key"),
        std::sync::Arc::new(keyring),
    );
    let sealed = sealed_versions(&log, &id).await;
    assert_eq!(sealed.len(), 2, "both versions' ciphertext is in the log");
    for (version, ciphertext) in &sealed {
        let context = vault::SecretContext {
            org: "acme",
            credential_id: &id,
            version: *version,
        };
        match (version, vault.open(&context, ciphertext).await) {
            (1, Err(vault::VaultError::KeyDestroyed)) => {}
            (2, Ok(opened)) => assert_eq!(opened.expose_secret(), new),
            (version, other) => panic!("version {version}: {:?}", other.err()),
        }
    }
    drop(log);
    let views = views::Views::open(&app.views_path()).expect("views");
    let row = views.credential("acme", &id).expect("read").expect("row");
    assert!(row.history[0].shredded_at_ms.is_some());
    assert!(row.credential.versions[0].shredded);
    drop(views);

    for secret in [&old, &new, &limited] {
        canary::assert_absent(&app, secret);
    }
}

/// The sealed secret of every version of credential `id` in the log, by version.
async fn sealed_versions(log: &eventlog::EmbeddedLog, id: &str) -> Vec<(u64, secrets::Sealed)> {
    use eventlog::EventLog;
    use futures::StreamExt;
    let last = log.last_seq().await.expect("last");
    let mut tail = log.tail(1).await.expect("tail");
    let mut found = Vec::new();
    while let Some(stored) = tail.next().await {
        let stored = stored.expect("message");
        let envelope = eventlog::Envelope::decode(&stored.data).expect("envelope");
        let event = domain::Event::decode(domain::event::PAYLOAD_VERSION, &envelope.payload)
            .expect("event");
        if envelope.aggregate_id == id {
            match event {
                domain::Event::Credential(domain::credential::Event::Registered(r)) => {
                    found.push((r.version, r.sealed));
                }
                domain::Event::Credential(domain::credential::Event::Rotated(r)) => {
                    found.push((r.version, r.sealed));
                }
                _ => {}
            }
        }
        if stored.seq >= last {
            break;
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_is_shown_flagged_within_a_week_and_enforced_by_resolve() {
    let app = TestApp::start(Backend::Embedded).await;
    let rfc3339 = |ms: i64| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .expect("time")
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format")
    };
    let now = app::Clock::now_ms(app.clock.as_ref());
    let day = 24 * 60 * 60 * 1000;
    let past = app
        .create_credential(
            "Old",
            "openai_compatible",
            &secret("sk-x"),
            Some(rfc3339(now - day)),
        )
        .await;
    assert_eq!(past.body["code"], "expires_at.past", "{}", past.body);
    let garbage = app
        .create_credential(
            "Bad",
            "openai_compatible",
            &secret("sk-x"),
            Some("next tuesday".into()),
        )
        .await;
    assert_eq!(
        garbage.body["code"], "timestamp.invalid",
        "{}",
        garbage.body
    );

    let key = secret("sk-expiring");
    let created = app
        .create_credential(
            "Trial",
            "openai_compatible",
            &key,
            Some(rfc3339(now + 3 * day)),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = id_of(&created);
    let model = app.add_model_on("Trial model", "llama3", &id).await;
    let service = app.issue_token("runtime", "service").await;
    let listed = app.list_credentials().await;
    let item = &listed.body["items"][0];
    assert_eq!(
        (&item["state"], &item["expiring_soon"]),
        (&json!("active"), &json!(true)),
        "{item}"
    );
    assert!(item["expires_at"].is_string());
    assert_eq!(resolved_key(&app, &service, &model).await, Ok(key.clone()));

    // Four days on, it is expired: resolve refuses it with a clear code.
    app.clock.advance(Duration::from_millis(4 * day as u64));
    assert_eq!(
        resolved_key(&app, &service, &model).await,
        Err("credential.expired".to_owned())
    );
    let shown = app.get_credential(&id).await;
    assert_eq!(shown.body["state"], "expired");
    assert_eq!(shown.body["expiring_soon"], false);
    let on_model = app.get_model(&model).await;
    assert_eq!(on_model.body["credential"]["state"], "expired");

    // A Bedrock short-term API key is known to last 12 hours at most, whatever is entered.
    let short_term = secret("bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t");
    let request = api::CreateCredential {
        name: "Bedrock short-term".into(),
        provider: "bedrock".into(),
        credential: api::CredentialInput {
            bedrock_api_key: Some(api::SecretField::new(short_term.clone())),
            ..api::CredentialInput::default()
        },
        expires_at: Some(rfc3339(app::Clock::now_ms(app.clock.as_ref()) + 30 * day)),
    };
    let bedrock = app
        .call(
            Method::POST,
            "/v1/credentials",
            Some(serde_json::to_value(request).expect("json")),
        )
        .await;
    assert_eq!(bedrock.status, StatusCode::CREATED, "{}", bedrock.body);
    let twelve_hours = rfc3339(app::Clock::now_ms(app.clock.as_ref()) + 12 * 60 * 60 * 1000);
    assert_eq!(
        bedrock.body["expires_at"],
        twelve_hours.as_str(),
        "{}",
        bedrock.body
    );
    assert_eq!(bedrock.body["expiring_soon"], true);
    canary::assert_absent(&app, &short_term);
}

/// A registry started with another master key still starts; the credentials it cannot
/// open, and the models using them, say `needs_reconfiguration`; resolve answers that code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_master_key_fails_closed_and_visibly() {
    let mut app = TestApp::start(Backend::Embedded).await;
    let key = secret("sk-locked");
    let created = app
        .create_credential("Locked", "openai_compatible", &key, None)
        .await;
    let id = id_of(&created);
    let model = app.add_model_on("Locked model", "llama3", &id).await;
    let service = app.issue_token("runtime", "service").await;

    app.set_tweak(|config| {
        config.master_key = Some("ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=".to_owned());
    });
    app.restart().await;
    let unreadable = app::credentials::check_keys(app.registry())
        .await
        .expect("checked");
    assert_eq!(unreadable, 1);
    let shown = app.get_credential(&id).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert_eq!(shown.body["state"], "needs_reconfiguration");
    let on_model = app.get_model(&model).await;
    assert_eq!(
        on_model.body["credential"]["state"],
        "needs_reconfiguration"
    );
    let listed = app.list_models().await;
    assert_eq!(listed.status, StatusCode::OK);
    let resolved = app.resolve_with(&model, &service).await;
    assert_eq!(
        (resolved.status, resolved.body["code"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("credential.needs_reconfiguration")
        ),
        "{}",
        resolved.body
    );

    // With the right key back, it opens again.
    app.set_tweak(|_| {});
    app.restart().await;
    assert_eq!(
        app::credentials::check_keys(app.registry())
            .await
            .expect("checked"),
        0
    );
    assert_eq!(app.get_credential(&id).await.body["state"], "active");
    assert_eq!(resolved_key(&app, &service, &model).await, Ok(key.clone()));
    app.stop().await;
    canary::assert_absent(&app, &key);
}

/// A second master key (base64 of bytes 32..=63).
const NEW_MASTER_KEY: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

/// The master key rotates while the registry serves: replicas take the new key as their
/// master key and the old one as the previous; a rotation stopped midway (each entry is one
/// atomic keyring write, so a kill -9 leaves exactly this) is finished by a rerun while
/// resolves and commands go on; then the old key is removed and everything still opens, and
/// fingerprints still recognise saved secrets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_key_rotates_online_resumes_and_the_old_key_goes() {
    let mut app = TestApp::start(Backend::JetStream).await;
    let keys: Vec<String> = (0..3).map(|_| secret("sk-rekeyed")).collect();
    let mut models = Vec::new();
    for (n, key) in keys.iter().enumerate() {
        let created = app
            .create_credential(&format!("Key {n}"), "openai_compatible", key, None)
            .await;
        let id = id_of(&created);
        models.push(app.add_model_on(&format!("Model {n}"), "llama3", &id).await);
    }
    let service = app.issue_token("runtime", "service").await;

    // A rolling restart: the new key wraps, the old one still unwraps.
    app.set_tweak(|config| {
        config.master_key = Some(NEW_MASTER_KEY.to_owned());
        config.previous_master_key = Some(MASTER_KEY.to_owned());
    });
    app.restart().await;
    let config = app.config();
    let stopped = app::rotate_master_key(&config, Some(2))
        .await
        .expect("first run");
    assert!(!stopped.complete(), "{stopped:?}");
    assert_eq!(stopped.rewrapped, 2);

    // The rerun finishes while resolves and a command go on.
    let done = AtomicBool::new(false);
    let rerun = async {
        let report = app::rotate_master_key(&config, None).await.expect("rerun");
        done.store(true, Ordering::SeqCst);
        report
    };
    let load = async {
        let mut resolved = 0;
        let added = secret("sk-during");
        let created = app
            .create_credential("During", "openai_compatible", &added, None)
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        while !done.load(Ordering::SeqCst) || resolved == 0 {
            for (model, key) in models.iter().zip(&keys) {
                assert_eq!(resolved_key(&app, &service, model).await, Ok(key.clone()));
                resolved += 1;
            }
            // A resolve served from caches never waits: let the rotation run.
            tokio::task::yield_now().await;
        }
        (added, resolved)
    };
    let (report, (added, resolved)) = tokio::join!(rerun, load);
    assert!(report.complete(), "{report:?}");
    assert!(resolved > 0);

    // The old key removed: the registry starts, and every credential opens.
    app.set_tweak(|config| config.master_key = Some(NEW_MASTER_KEY.to_owned()));
    app.restart().await;
    assert_eq!(
        app::credentials::check_keys(app.registry())
            .await
            .expect("checked"),
        0
    );
    for (model, key) in models.iter().zip(&keys) {
        assert_eq!(resolved_key(&app, &service, model).await, Ok(key.clone()));
    }
    // Fingerprints survived: a saved secret is still recognised.
    let again = app
        .create_credential("Again", "openai_compatible", &keys[0], None)
        .await;
    assert_eq!(
        again.body["code"], "credential.secret_saved",
        "{}",
        again.body
    );
    let again = app
        .create_credential("Again", "openai_compatible", &added, None)
        .await;
    assert_eq!(
        again.body["code"], "credential.secret_saved",
        "{}",
        again.body
    );
    app.stop().await;
    for key in keys.iter().chain([&added]) {
        canary::assert_absent(&app, key);
    }
}

/// `modelreg admin rotate-master-key` killed with SIGKILL midway (in NATS mode, beside
/// nothing else) leaves every key readable with one of the two master keys, and a rerun
/// finishes: every key then opens with the new key alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_key_rotation_killed_midway_is_finished_by_a_rerun() {
    const ENTRIES: u64 = 3000;
    let key = |encoded: &str| vault::MasterKey::from_base64(encoded).expect("key");
    let nats = crate::support::NatsServer::start();
    let client = async_nats::connect(nats.url()).await.expect("nats");
    let keyring: std::sync::Arc<dyn vault::Keyring> = std::sync::Arc::new(
        vault::NatsKeyring::connect(client, "MODELREG_KEYRING")
            .await
            .expect("keyring"),
    );
    let before = vault::Vault::load(key(MASTER_KEY), vec![], keyring.clone())
        .await
        .expect("vault");
    let plaintext = secrets::Secret::new("sk-rekeyed-by-a-killed-run".to_owned());
    let ids: Vec<String> = (0..ENTRIES).map(|n| format!("cred_{n}")).collect();
    let mut sealed = Vec::new();
    for id in &ids {
        let context = vault::SecretContext {
            org: "acme",
            credential_id: id,
            version: 1,
        };
        sealed.push(before.seal(&context, &plaintext).await.expect("seal"));
    }
    let context = |n: usize| vault::SecretContext {
        org: "acme",
        credential_id: &ids[n],
        version: 1,
    };
    let data = tempfile::tempdir().expect("dir");
    let nats_url = nats.url();
    let data_dir = data.path().display().to_string();
    let env = [
        ("MODELREG_NATS_URL", nats_url.as_str()),
        ("MODELREG_DATA_DIR", data_dir.as_str()),
        ("MODELREG_MASTER_KEY", NEW_MASTER_KEY),
        ("MODELREG_PREVIOUS_MASTER_KEY", MASTER_KEY),
    ];
    let rotation = || {
        let mut command = std::process::Command::new(crate::crash::modelreg_binary());
        command
            .args(["admin", "rotate-master-key"])
            .envs(env)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command
    };

    // Killed once some keys moved (they no longer open under the old key alone).
    let mut child = rotation().spawn().expect("spawn");
    let old_only = vault::Vault::new(key(MASTER_KEY), keyring.clone());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    'watch: loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the rotation moved no key"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "finished before the kill"
        );
        for n in (0..ids.len()).step_by(50) {
            if old_only.check(&context(n)).await.is_err() {
                break 'watch;
            }
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");

    // Midway: some keys under each master key, every one readable with both configured.
    let during = vault::Vault::load(key(NEW_MASTER_KEY), vec![key(MASTER_KEY)], keyring.clone())
        .await
        .expect("vault");
    let new_only = vault::Vault::new(key(NEW_MASTER_KEY), keyring.clone());
    let mut moved = 0;
    for (n, sealed) in sealed.iter().enumerate() {
        let opened = during.open(&context(n), sealed).await.expect("opens");
        assert_eq!(opened.expose_secret(), plaintext.expose_secret());
        if new_only.check(&context(n)).await.is_ok() {
            moved += 1;
        }
    }
    assert!(
        moved > 0 && moved < ENTRIES as usize,
        "killed midway: {moved} of {ENTRIES} moved"
    );

    // The rerun finishes; the new key alone opens everything, fingerprints unchanged.
    let rerun = rotation().output().expect("rerun");
    let said = String::from_utf8_lossy(&rerun.stdout);
    assert!(
        rerun.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    assert!(said.contains("complete"), "{said}");
    let after = vault::Vault::load(key(NEW_MASTER_KEY), vec![], keyring)
        .await
        .expect("vault");
    for (n, sealed) in sealed.iter().enumerate() {
        let opened = after.open(&context(n), sealed).await.expect("opens");
        assert_eq!(opened.expose_secret(), plaintext.expose_secret());
    }
    assert_eq!(
        after.fingerprint("acme", "openai", &plaintext),
        before.fingerprint("acme", "openai", &plaintext)
    );
}

/// A rename while a rotation's retest runs does not make the rotation fail or test again:
/// it is decided again on the renamed credential.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_during_a_retest_does_not_undo_the_rotation() {
    let app = TestApp::start(Backend::Embedded).await;
    let created = app
        .create_credential("Slow", "openai_compatible", &secret("sk-slow"), None)
        .await;
    let id = id_of(&created);
    // The fake answers the model `slow` after a pause: the retest is still running when
    // the rename lands.
    app.add_model_on("Slow model", "slow", &id).await;
    let seen = app.fake.seen();
    let new = secret("sk-slow-new");
    let rotation = app.rotate_credential(&id, &new, true);
    let rename = async {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while app.fake.seen() == seen {
            assert!(
                std::time::Instant::now() < deadline,
                "the retest never called"
            );
            tokio::task::yield_now().await;
        }
        app.call(
            Method::PATCH,
            &format!("/v1/credentials/{id}"),
            Some(json!({ "name": "Renamed meanwhile" })),
        )
        .await
    };
    let (rotated, renamed) = tokio::join!(rotation, rename);
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    assert_eq!(rotated.body["credential"]["version"], 2);
    assert_eq!(rotated.body["credential"]["name"], "Renamed meanwhile");
    assert_eq!(rotated.body["tests"].as_array().map(Vec::len), Some(1));
}

/// Two rotations of one version race (on two replicas, say): the second to store its data
/// key finds the first one's, which may be about to append. It seals with that key instead
/// of replacing it, so whichever rotation's event lands, its secret opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_rotations_leave_the_version_that_lands_readable() {
    let app = TestApp::start(Backend::JetStream).await;
    let created = app
        .create_credential("Raced", "openai_compatible", &secret("sk-raced-old"), None)
        .await;
    let id = id_of(&created);
    let model = app.add_model_on("Raced model", "llama3", &id).await;
    let service = app.issue_token("runtime", "service").await;

    // The first rotation, elsewhere: its version 2 key stored, its event not appended yet.
    let elsewhere = vault::Vault::new(
        vault::MasterKey::from_base64(MASTER_KEY).expect("key"),
        std::sync::Arc::new(app.nats_keyring().await),
    );
    let version_2 = vault::SecretContext {
        org: "acme",
        credential_id: &id,
        version: 2,
    };
    let first = secret("sk-raced-first");
    let (first_sealed, first_key) = elsewhere
        .seal_new(&version_2, &secrets::Secret::new(first.clone()))
        .expect("seal");
    elsewhere.store(first_key).await.expect("store");

    // The second rotation, here, lands.
    let second = secret("sk-raced-second");
    let rotated = app.rotate_credential(&id, &second, false).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    assert_eq!(rotated.body["credential"]["version"], 2);
    let resolved = app.resolve_with(&model, &service).await;
    assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.body);
    assert_eq!(resolved.body["credential"]["api_key"], second.as_str());

    // Had the first rotation's event landed instead, its secret would open too.
    let opened = elsewhere
        .open(&version_2, &first_sealed)
        .await
        .expect("the first rotation's ciphertext opens with the version's key");
    assert_eq!(opened.expose_secret(), &first);
}

/// A rotation that landed and stopped before shredding the version it retired: sent to a
/// replica whose views stand still (so it answers as soon as the event lands, before the
/// shred), with no worker running anywhere. Then served by a fresh replica (views caught
/// up, the usual read-your-writes wait, no worker): its registry and address, the
/// credential's id, and a sender of the same rotation.
struct Unshredded {
    registry: std::sync::Arc<app::Registry>,
    base: String,
    id: String,
    token: String,
    new: String,
    tasks: Vec<tokio::task::AbortHandle>,
    _replicas: [tempfile::TempDir; 2],
    /// The fresh replica, running (dropping it would stop its projector).
    fresh: Option<app::Running>,
}

impl Unshredded {
    async fn make(app: &mut TestApp) -> Self {
        let created = app
            .create_credential("Lagged", "openai_compatible", &secret("sk-lagged"), None)
            .await;
        let id = id_of(&created);
        let lagging_dir = tempfile::tempdir().expect("dir");
        let mut config = app.config();
        config.data_dir = lagging_dir.path().to_path_buf();
        config.read_your_writes_timeout_ms = 0;
        let lagging = app::start(&config).await.expect("second replica");
        let known = created.position.expect("position");
        lagging
            .registry
            .views()
            .wait_for(known, Duration::from_secs(10))
            .await
            .expect("the replica catches up");
        let lagging_registry = std::sync::Arc::clone(&lagging.registry);
        // From here on its views stand still, and no worker runs.
        lagging.stop().await;
        app.stop().await;
        let (base, served) = crate::support::serve_api(&lagging_registry).await;
        let fresh_dir = tempfile::tempdir().expect("dir");
        let mut lagged = Self {
            registry: lagging_registry,
            base,
            id,
            token: app.token.clone(),
            new: secret("sk-lagged-new"),
            tasks: vec![served.abort_handle()],
            _replicas: [lagging_dir, fresh_dir],
            fresh: None,
        };
        let (status, body) = lagged.rotate().await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["code"], "command.landed_views_behind", "{body}");
        let landed = body["position"].as_u64().expect("position");

        let mut config = app.config();
        config.data_dir = lagged._replicas[1].path().to_path_buf();
        let fresh = app::start(&config).await.expect("third replica");
        fresh
            .registry
            .views()
            .wait_for(landed, Duration::from_secs(10))
            .await
            .expect("the fresh replica reaches the rotation");
        let (base, served) = crate::support::serve_api(&fresh.registry).await;
        lagged.registry = std::sync::Arc::clone(&fresh.registry);
        lagged.base = base;
        lagged.tasks.push(served.abort_handle());
        lagged.fresh = Some(fresh);
        let shown = lagged.shown().await;
        assert_eq!(shown["version"], 2, "{shown}");
        assert_eq!(shown["versions"][0]["state"], "retired", "{shown}");
        lagged
    }

    async fn rotate(&self) -> (StatusCode, Value) {
        let reply = reqwest::Client::new()
            .post(format!("{}/v1/credentials/{}/rotation", self.base, self.id))
            .bearer_auth(&self.token)
            .header("idempotency-key", "rotate-lagged")
            .json(&json!({"credential": {"api_key": self.new}}))
            .send()
            .await
            .expect("rotate");
        (reply.status(), reply.json().await.expect("json"))
    }

    async fn shown(&self) -> Value {
        let reply = reqwest::Client::new()
            .get(format!("{}/v1/credentials/{}", self.base, self.id))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("get");
        assert_eq!(reply.status(), StatusCode::OK);
        reply.json().await.expect("json")
    }
}

impl Drop for Unshredded {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Retried with its key, such a rotation shreds what its first attempt left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_rotation_shreds_what_its_first_attempt_left() {
    let mut app = TestApp::start(Backend::JetStream).await;
    let lagged = Unshredded::make(&mut app).await;
    let (status, body) = lagged.rotate().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["credential"]["version"], 2, "applied once: {body}");
    assert_eq!(
        body["credential"]["versions"][0]["state"], "shredded",
        "{body}"
    );
    assert_eq!(lagged.shown().await["versions"][0]["state"], "shredded");
}

/// Never retried, it is finished by the dependents worker's `credential-shredder`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_shreds_what_a_rotation_left() {
    let mut app = TestApp::start(Backend::JetStream).await;
    let mut lagged = Unshredded::make(&mut app).await;
    let registry = std::sync::Arc::clone(&lagged.registry);
    lagged.tasks.push(
        tokio::spawn(async move {
            workers::dependents::run(
                registry,
                std::sync::Arc::new(workers::QuietNotifier),
                std::future::pending(),
            )
            .await
            .expect("dependents worker");
        })
        .abort_handle(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let shown = lagged.shown().await;
        if shown["versions"][0]["state"] == "shredded" {
            assert_eq!(shown["version"], 2, "{shown}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the worker never shredded it: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// In NATS mode a second replica resolves the new secret once its views include the
/// rotation, and never the shredded one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_replica_follows_a_rotation() {
    let app = TestApp::start(Backend::JetStream).await;
    let old = secret("sk-replica-old");
    let created = app
        .create_credential("Shared", "openai_compatible", &old, None)
        .await;
    let id = id_of(&created);
    let model = app.add_model_on("Replicated", "llama3", &id).await;
    let service = app.issue_token("runtime", "service").await;
    let other_dir = tempfile::tempdir().expect("dir");
    let mut config = app.config();
    config.data_dir = other_dir.path().to_path_buf();
    let replica = app::start(&config).await.expect("second replica");
    let resolve_on_replica = || async {
        let principal = app::orgs::authenticate(&replica.registry, &service).expect("token");
        let answer = app::resolve::resolve(&replica.registry, &app::Ctx::read(principal), &model)
            .await
            .map_err(|e| e.to_problem().code)?;
        let json: Value = serde_json::from_slice(&answer.value.to_json()).expect("json");
        Ok::<_, String>(
            json["credential"]["api_key"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        )
    };
    let issued_at = app.registry().views().position();
    replica.registry.settle(issued_at).await.expect("caught up");
    assert_eq!(resolve_on_replica().await, Ok(old.clone()));

    let new = secret("sk-replica-new");
    let rotated = app.rotate_credential(&id, &new, false).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let at = rotated.position.expect("position");
    replica.registry.settle(at).await.expect("caught up");
    assert_eq!(resolve_on_replica().await, Ok(new.clone()));
    let shown = app::credentials::get(&replica.registry, &replica_ctx(&replica, &app), &id)
        .expect("credential");
    assert_eq!(shown.value.versions[0].state, "shredded");
    replica.stop().await;
}

/// The admin's context on another replica.
fn replica_ctx(replica: &app::Running, app: &TestApp) -> app::Ctx {
    app::Ctx::read(app::orgs::authenticate(&replica.registry, &app.token).expect("admin"))
}
