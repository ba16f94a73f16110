//! Backup and restore without loss, as `ops/backup.md` says to take them: the log and the
//! keyring together (embedded: `log.redb` and `keyring.redb`; JetStream: the store of a
//! stopped nats-server, which holds the stream and the keyring bucket), never the views.
//! Restored into a fresh server, they give views identical to the byte, the same audit
//! digest, a log that verifies against it, and credentials that still open.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{Backend, NatsServer, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_backup_restores_into_a_fresh_server() {
    run(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jetstream_backup_restores_into_a_fresh_server() {
    run(Backend::JetStream).await;
}

async fn run(backend: Backend) {
    let mut app = TestApp::start(backend).await;
    let service = app.issue_token("runtime", "service").await;
    let secret = format!("sk-canary-{}", uuid::Uuid::new_v4().simple());
    let added = app
        .add_model(json!({"display_name": "Alpha", "provider": "openai",
            "provider_model_id": "gpt-5", "credential": {"api_key": secret}, "max_tokens": 8000}))
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let edited = app
        .edit_model("alpha", json!({"display_name": "Alpha Prod"}), None)
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    let last = app.registry().log().last_seq().await.expect("last");
    app.registry().settle(last).await.expect("settle");
    let checksum = app.registry().views().checksum().expect("checksum");
    let head = app
        .registry()
        .views()
        .head()
        .expect("head")
        .expect("a head");
    let trail = app
        .call(Method::GET, "/v1/audit?limit=500", None)
        .await
        .body;
    app.stop().await;

    // The backup: the log and the keyring, taken while nothing writes them.
    let backup = tempfile::tempdir().expect("backup");
    let restored_data = tempfile::tempdir().expect("fresh data dir");
    let nats = match backend {
        Backend::Embedded => {
            for file in ["log.redb", "keyring.redb"] {
                std::fs::copy(app.data.path().join(file), backup.path().join(file))
                    .expect("back up");
                std::fs::copy(backup.path().join(file), restored_data.path().join(file))
                    .expect("restore");
            }
            None
        }
        Backend::JetStream => {
            let nats = app.nats.as_mut().expect("nats");
            nats.stop();
            copy_tree(&nats.store_dir(), backup.path());
            Some(NatsServer::start_from_store(backup.path()))
        }
    };
    let restored = TestApp::open(nats, restored_data).await;
    let last_restored = restored.registry().log().last_seq().await.expect("last");
    assert_eq!(last_restored, last, "nothing lost, nothing added");
    restored
        .registry()
        .settle(last_restored)
        .await
        .expect("settle");
    assert_eq!(
        restored.registry().views().checksum().expect("checksum"),
        checksum,
        "identical views"
    );
    assert_eq!(
        restored.registry().views().head().expect("head"),
        Some(head)
    );
    let verified = eventlog::chain::verify(restored.registry().log().as_ref(), Some(head))
        .await
        .expect("verify");
    assert_eq!(verified.first_break, None);
    let mut restored_trail = restored
        .call_with(Method::GET, "/v1/audit?limit=500", None, &app.token, &[])
        .await;
    assert_eq!(restored_trail.status, StatusCode::OK);
    restored_trail.body["position"] = trail["position"].clone();
    assert_eq!(restored_trail.body, trail, "the same audit trail");
    // The keyring came along: the credential still opens.
    let resolved = restored
        .call_with(Method::GET, "/v1/resolve/alpha", None, &service, &[])
        .await;
    assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.body);
    assert_eq!(resolved.body["credential"]["api_key"], secret.as_str());
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}
