//! Recovery from trouble outside the registry: NATS restarting under a running server, and a
//! crash in the middle of the first start's bootstrap.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};

use crate::support::{Backend, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projector_resumes_after_nats_restarts() {
    let mut app = TestApp::start(Backend::JetStream).await;
    let before = app.add_model(app.local_draft("Before Restart")).await;
    assert_eq!(before.status, StatusCode::CREATED, "{}", before.body);

    app.nats
        .as_mut()
        .expect("a NATS backend")
        .crash_and_restart();

    // Commands work again once the client has reconnected and the projector resumed (its
    // ephemeral consumer died with the server): read-your-writes needs the projector.
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        let reply = app.add_model(app.local_draft("After Restart")).await;
        if reply.status == StatusCode::CREATED || Instant::now() > deadline {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(after.status, StatusCode::CREATED, "{}", after.body);
    let ready = loop {
        let reply = app.call(Method::GET, "/readyz", None).await;
        if reply.status == StatusCode::OK || Instant::now() > deadline {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    let listing = app.list_models().await;
    let slugs: Vec<&str> = listing.body["custom"]
        .as_array()
        .expect("custom models")
        .iter()
        .filter_map(|m| m["slug"].as_str())
        .collect();
    assert_eq!(
        slugs,
        ["after-restart", "before-restart"],
        "{}",
        listing.body
    );
}

/// A master key file that went missing (lost, or a mistyped path) is not replaced by a new
/// key while the keyring holds keys the old one wrapped: a new key would open none of them.
/// The start refuses as a configuration error, makes no key, and starts once the file is
/// back. A fresh data dir still gets its key made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_master_key_file_is_not_replaced_by_a_new_key() {
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().expect("dir");
    let config = app::config::Config {
        data_dir: data.path().to_path_buf(),
        ..app::config::Config::default()
    };
    let first = app::start(&config).await.expect("first start");
    assert!(first.created_master_key, "a fresh data dir gets a key");
    first.stop().await;
    let key_path = data.path().join("master.key");
    let key = std::fs::read(&key_path).expect("key file");
    std::fs::remove_file(&key_path).expect("remove the key file");

    let Err(refused) = app::start(&config).await else {
        panic!("started with a new master key over a keyring in use");
    };
    let said = app::chain(&refused);
    assert!(refused.is_misconfiguration(), "{said}");
    assert!(said.contains("the keyring holds keys"), "{said}");
    assert!(!key_path.exists(), "no key was made");

    std::fs::write(&key_path, &key).expect("restore the key file");
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let again = app::start(&config)
        .await
        .expect("started with the key back");
    assert!(!again.created_master_key);
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_interrupted_by_a_crash_is_finished_on_the_next_start() {
    let app = TestApp::start(Backend::Embedded).await;
    let registry = app.registry();
    let dir = tempfile::tempdir().expect("temp dir");
    let pending = dir.path().join("bootstrap-token.pending");
    let final_path = dir.path().join("bootstrap-token");
    let text = |p: &app::orgs::PreparedToken| p.token().expose_secret().to_owned();

    // The crash came after the token was issued, before the file was renamed: the next
    // start shows that token (it never was) and keeps it in the final file.
    let drawn = app::orgs::PreparedToken::draw();
    let token = text(&drawn);
    std::fs::write(&pending, format!("{token}\n")).expect("write pending");
    app::orgs::create_with(registry, "default", drawn)
        .await
        .expect("org created before the crash");
    let (path, shown) = app::bootstrap_default_org(registry, dir.path())
        .await
        .expect("bootstrap")
        .expect("the pending token is shown");
    assert_eq!(path, final_path);
    assert_eq!(shown.expose_secret(), token);
    assert_eq!(
        std::fs::read_to_string(&final_path)
            .expect("token file")
            .trim(),
        token
    );
    assert!(!pending.exists());
    let principal = app::orgs::authenticate(registry, &token).expect("the token works");
    assert_eq!(principal.org().as_str(), "default");

    // Started again: nothing to do, nothing shown.
    assert!(
        app::bootstrap_default_org(registry, dir.path())
            .await
            .expect("bootstrap")
            .is_none()
    );

    // A pending token whose org got its admin token elsewhere (another replica's bootstrap
    // won) is dropped, never issued.
    let stale = app::orgs::PreparedToken::draw();
    std::fs::write(&pending, text(&stale)).expect("write pending");
    assert!(
        app::bootstrap_default_org(registry, dir.path())
            .await
            .expect("bootstrap")
            .is_none()
    );
    assert!(!pending.exists());
    assert!(app::orgs::authenticate(registry, &text(&stale)).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_that_crashed_before_appending_uses_its_drawn_token() {
    let app = TestApp::start(Backend::Embedded).await;
    let registry = app.registry();
    let dir = tempfile::tempdir().expect("temp dir");
    let drawn = app::orgs::PreparedToken::draw();
    let token = drawn.token().expose_secret().to_owned();
    std::fs::write(dir.path().join("bootstrap-token.pending"), &token).expect("write pending");
    let (_, shown) = app::bootstrap_default_org(registry, dir.path())
        .await
        .expect("bootstrap")
        .expect("created now");
    assert_eq!(shown.expose_secret(), token);
    assert!(app::orgs::authenticate(registry, &token).is_ok());
}

/// A worker consumer that lost the log and has not resumed: a worker process is not ready
/// (its consumers are all it does), while an API replica stays ready and names it, since it
/// serves every request meanwhile (a NATS node's death loses every replica's consumers at
/// once, and must not take the whole API out of rotation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resuming_worker_consumer_makes_a_worker_process_unready_not_the_api() {
    let app = TestApp::start(Backend::Embedded).await;
    let registry = std::sync::Arc::clone(app.running_registry());
    // A consumer no worker of the test app runs, so none marks it resumed meanwhile.
    registry.consumers().lost("probe", "the node died");
    let resuming = "worker consumer probe resuming after losing the log: the node died";

    let readyz = |base: String| {
        let http = app.http.clone();
        async move {
            let response = http
                .get(format!("{base}/readyz"))
                .send()
                .await
                .expect("readyz");
            let status = response.status();
            (status, response.text().await.expect("text"))
        }
    };
    let (status, text) = readyz(app.base.clone()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains(&format!("warning: {resuming}")), "{text}");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let worker = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let ops = tokio::spawn(server::serve_ops(
        listener,
        std::sync::Arc::clone(&registry),
        server::Timeouts::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    let (status, text) = readyz(worker.clone()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert_eq!(text, format!("{resuming}\n"));

    registry.consumers().resumed("probe");
    let (status, text) = readyz(worker).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(!text.contains("probe"), "{text}");
    let _ = stop.send(());
    ops.await.expect("ops task").expect("ops server");
}
