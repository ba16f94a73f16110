//! Tamper evidence: `modelreg audit verify` (and `eventlog::chain::verify` under it) finds
//! every edited, removed or reordered event, with its position, in a copy of an embedded
//! log and in a JetStream stream; a digest recorded earlier (`GET /v1/audit/head`) also
//! finds a log cut short and what no chain inside the log can (the last event of an
//! aggregate edited, two aggregates' events swapped). A clean log verifies.

use std::path::Path;
use std::process::Command;

use eventlog::chain::{BreakKind, verify};
use eventlog::{EmbeddedLog, Envelope, Head, Stored};
use redb::ReadableTable;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::crash::modelreg_binary;
use crate::evolution::read_log;
use crate::support::{Backend, TestApp};

/// The embedded log's messages table: seq → (subject, message id, recorded-at, data).
const MESSAGES: redb::TableDefinition<u64, (&str, &str, u64, &[u8])> =
    redb::TableDefinition::new("messages");

/// Two models, then edits: alpha three times, then beta last, so the last two events are
/// of different aggregates. Returns the log and the head the API reports.
async fn history(app: &TestApp) -> (Vec<Stored>, Head) {
    for name in ["Alpha", "Beta"] {
        let added = app.add_model(app.local_draft(name)).await;
        assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    }
    for (slug, max_tokens) in [
        ("alpha", 1000),
        ("alpha", 2000),
        ("alpha", 3000),
        ("beta", 1500),
    ] {
        let edited = app
            .edit_model(slug, json!({ "max_tokens": max_tokens }), None)
            .await;
        assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    }
    let head = app.call(Method::GET, "/v1/audit/head", None).await;
    assert_eq!(head.status, StatusCode::OK, "{}", head.body);
    let head: Head = head.body["expect"]
        .as_str()
        .expect("expect")
        .parse()
        .expect("a head");
    let log = read_log(app.registry().log().as_ref()).await;
    assert_eq!(head.position, log.last().expect("events").seq);
    (log, head)
}

/// The positions of an aggregate's events, in order.
fn positions_of(log: &[Stored], subject_suffix: &str) -> Vec<u64> {
    log.iter()
        .filter(|m| m.subject.ends_with(subject_suffix))
        .map(|m| m.seq)
        .collect()
}

/// A copy of the embedded log at `original`, changed by `change`.
fn tampered(
    original: &Path,
    change: impl FnOnce(&mut redb::Table<u64, (&str, &str, u64, &[u8])>),
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::copy(original, dir.path().join("log.redb")).expect("copy");
    let db = redb::Database::create(dir.path().join("log.redb")).expect("open the copy");
    let txn = db.begin_write().expect("txn");
    {
        let mut table = txn.open_table(MESSAGES).expect("messages");
        change(&mut table);
    }
    txn.commit().expect("commit");
    dir
}

type Record = (String, String, u64, Vec<u8>);

fn take(table: &redb::Table<u64, (&str, &str, u64, &[u8])>, seq: u64) -> Record {
    let value = table.get(seq).expect("read").expect("the message");
    let (subject, id, at, data) = value.value();
    (subject.to_owned(), id.to_owned(), at, data.to_vec())
}

fn put(table: &mut redb::Table<u64, (&str, &str, u64, &[u8])>, seq: u64, record: &Record) {
    table
        .insert(
            seq,
            (
                record.0.as_str(),
                record.1.as_str(),
                record.2,
                record.3.as_slice(),
            ),
        )
        .expect("write");
}

/// Re-encodes the event at `seq` with another actor label, as a forger would.
fn forge(table: &mut redb::Table<u64, (&str, &str, u64, &[u8])>, seq: u64) {
    let mut record = take(table, seq);
    let mut envelope = Envelope::decode(&record.3).expect("envelope");
    envelope.actor.label = "somebody else".into();
    record.3 = envelope.encode();
    put(table, seq, &record);
}

async fn verify_copy(dir: &tempfile::TempDir, expect: Option<Head>) -> eventlog::chain::Verified {
    let log = EmbeddedLog::open(&dir.path().join("log.redb")).expect("open");
    verify(&log, expect).await.expect("verify")
}

fn first_break(verified: &eventlog::chain::Verified) -> (u64, BreakKind) {
    let found = verified.first_break.as_ref().expect("a break");
    (found.position, found.kind.clone())
}

fn cli_verify(args: &[&str]) -> (bool, String) {
    let output = Command::new(modelreg_binary())
        .args(["audit", "verify"])
        .args(args)
        .output()
        .expect("run modelreg");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tampering_of_an_embedded_log_is_found_with_its_position() {
    let mut app = TestApp::start(Backend::Embedded).await;
    let (log, head) = history(&app).await;
    app.stop().await;
    let original = app.data.path().join("log.redb");
    let alpha = positions_of(&log, ".model.alpha");
    let beta = positions_of(&log, ".model.beta");
    let last = head.position;
    assert_eq!((alpha.len(), beta.len()), (4, 2));
    assert_eq!(
        *beta.last().expect("beta"),
        last,
        "beta's edit is the last event"
    );
    assert_eq!(*alpha.last().expect("alpha"), last - 1);

    // A clean copy verifies, with and without the head.
    let clean = tampered(&original, |_| {});
    assert_eq!(verify_copy(&clean, None).await.first_break, None);
    let verified = verify_copy(&clean, Some(head)).await;
    assert_eq!((verified.first_break, verified.head), (None, head));
    let dir = clean.path().to_str().expect("path");
    let (ok, text) = cli_verify(&["--data-dir", dir, "--expect", &head.to_string()]);
    assert!(
        ok && text.contains("verified") && text.contains(&head.to_string()),
        "{text}"
    );

    // Edited: alpha's add, re-encoded with another actor.
    let edited = tampered(&original, |t| forge(t, alpha[0]));
    assert_eq!(
        first_break(&verify_copy(&edited, None).await),
        (alpha[0], BreakKind::Altered)
    );
    // Bytes that are no envelope any more.
    let garbled = tampered(&original, |t| {
        let mut record = take(t, alpha[1]);
        record.3.truncate(5);
        put(t, alpha[1], &record);
    });
    assert_eq!(
        first_break(&verify_copy(&garbled, None).await),
        (alpha[1], BreakKind::Undecodable)
    );

    // Removed: a message in the middle.
    let removed = tampered(&original, |t| {
        t.remove(alpha[1]).expect("remove");
    });
    assert_eq!(
        first_break(&verify_copy(&removed, None).await),
        (alpha[1], BreakKind::Missing)
    );
    let dir = removed.path().to_str().expect("path");
    let (ok, text) = cli_verify(&["--data-dir", dir]);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("BROKEN at position {} (missing)", alpha[1])),
        "{text}"
    );

    // Reordered: two events of one aggregate swapped.
    let reordered = tampered(&original, |t| {
        let (a, b) = (take(t, alpha[1]), take(t, alpha[2]));
        put(t, alpha[1], &b);
        put(t, alpha[2], &a);
    });
    assert_eq!(
        first_break(&verify_copy(&reordered, None).await),
        (alpha[1], BreakKind::OutOfOrder)
    );

    // Stored under another aggregate's subject.
    let moved = tampered(&original, |t| {
        let mut record = take(t, alpha[3]);
        record.0 = record.0.replace(".alpha", ".beta");
        put(t, alpha[3], &record);
    });
    assert_eq!(
        first_break(&verify_copy(&moved, None).await),
        (alpha[3], BreakKind::WrongSubject)
    );

    // What only the recorded digest finds: the last events of two aggregates swapped, the
    // last event of an aggregate edited, and a log cut short.
    let swapped = tampered(&original, |t| {
        let (a, b) = (take(t, last - 1), take(t, last));
        put(t, last - 1, &b);
        put(t, last, &a);
    });
    assert_eq!(
        verify_copy(&swapped, None).await.first_break,
        None,
        "each chain is intact"
    );
    assert_eq!(
        first_break(&verify_copy(&swapped, Some(head)).await),
        (last, BreakKind::DigestMismatch)
    );
    let forged_last = tampered(&original, |t| forge(t, last));
    assert_eq!(verify_copy(&forged_last, None).await.first_break, None);
    assert_eq!(
        first_break(&verify_copy(&forged_last, Some(head)).await),
        (last, BreakKind::DigestMismatch)
    );
    let truncated = tampered(&original, |t| {
        t.remove(last).expect("remove");
        t.remove(last - 1).expect("remove");
    });
    assert_eq!(
        verify_copy(&truncated, None).await.first_break,
        None,
        "a shorter log is a log"
    );
    assert_eq!(
        first_break(&verify_copy(&truncated, Some(head)).await),
        (last - 1, BreakKind::Truncated)
    );
    let dir = truncated.path().to_str().expect("path");
    let (ok, text) = cli_verify(&["--data-dir", dir, "--expect", &head.to_string()]);
    assert!(!ok && text.contains("(truncated)"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_deleted_from_a_jetstream_stream_is_found() {
    let app = TestApp::start(Backend::JetStream).await;
    let (log, head) = history(&app).await;
    let nats = app.nats.as_ref().expect("nats").url();
    let (ok, text) = cli_verify(&["--nats", &nats, "--expect", &head.to_string()]);
    assert!(ok, "{text}");

    let alpha = positions_of(&log, ".model.alpha");
    let client = async_nats::connect(&nats).await.expect("nats");
    let stream = async_nats::jetstream::new(client)
        .get_stream(app.config().stream)
        .await
        .expect("stream");
    assert!(stream.delete_message(alpha[2]).await.expect("delete"));
    let verified = verify(app.registry().log().as_ref(), Some(head))
        .await
        .expect("verify");
    assert_eq!(first_break(&verified), (alpha[2], BreakKind::Missing));
    assert_eq!(verified.head.position, alpha[2] - 1, "intact up to the gap");
    let (ok, text) = cli_verify(&["--nats", &nats]);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("BROKEN at position {} (missing)", alpha[2])),
        "{text}"
    );
}
