//! The conformance suite every [`EventLog`] backend must pass, run by each backend's tests.
//!
//! [`run_all`] expects a fresh, empty log. The individual checks only assume that nobody
//! else appends while they run: each works relative to the log's position when it starts,
//! except [`sequences_start_at_one_and_are_gapless`], which needs an empty log.
//! Every check uses its own subjects (`reg.conf-<check>.…`) and durable names. The durable
//! consumers' checks live in `durable`.

use std::time::Duration;

use futures::StreamExt;
use futures::future::join_all;
use futures::stream::BoxStream;

use crate::{AppendError, Appended, EventLog, LogError, Stored, Subject};

mod durable;

pub use durable::{
    durable_batches_deliver_in_order, durable_delivers_acks_and_redelivers,
    durable_gives_up_after_max_deliver, durable_in_progress_holds_the_delivery,
    durable_nak_redelivers_after_the_delay, durable_settings_change_on_reopen,
    durable_survives_reopen,
};

/// How long a check waits for something that should happen promptly.
const PATIENCE: Duration = Duration::from_secs(10);

/// Run every check against `log`, which must be fresh and empty.
pub async fn run_all(log: &dyn EventLog) {
    sequences_start_at_one_and_are_gapless(log).await;
    expected_sequence_guards_writes(log).await;
    duplicate_message_ids_write_nothing(log).await;
    subject_last_seq_is_per_subject(log).await;
    tail_from_the_middle_then_follows(log).await;
    concurrent_appends_to_distinct_subjects(log).await;
    concurrent_appends_to_one_subject_one_wins(log).await;
    durable_delivers_acks_and_redelivers(log).await;
    durable_gives_up_after_max_deliver(log).await;
    durable_settings_change_on_reopen(log).await;
    durable_nak_redelivers_after_the_delay(log).await;
    durable_in_progress_holds_the_delivery(log).await;
    durable_batches_deliver_in_order(log).await;
}

fn subject(check: &str, kind: &str, id: &str) -> Subject {
    let org = format!("conf-{check}");
    match Subject::new(&org, kind, id) {
        Ok(subject) => subject,
        Err(error) => panic!("conformance subjects are valid: {error}"),
    }
}

async fn append_ok(log: &dyn EventLog, subject: &Subject, expected: u64, msg_id: &str) -> u64 {
    let data = format!("{subject}/{msg_id}").into_bytes();
    match log.append(subject, expected, msg_id, data).await {
        Ok(Appended {
            seq,
            duplicate: false,
        }) => seq,
        Ok(appended) => panic!("append {msg_id} to {subject}: unexpected duplicate {appended:?}"),
        Err(error) => panic!("append {msg_id} to {subject} expecting {expected}: {error}"),
    }
}

async fn last_seq(log: &dyn EventLog) -> u64 {
    match log.last_seq().await {
        Ok(seq) => seq,
        Err(error) => panic!("last_seq failed: {error}"),
    }
}

async fn subject_last(log: &dyn EventLog, subject: &Subject) -> u64 {
    match log.subject_last_seq(subject).await {
        Ok(seq) => seq,
        Err(error) => panic!("subject_last_seq({subject}) failed: {error}"),
    }
}

async fn open_tail(log: &dyn EventLog, from: u64) -> BoxStream<'static, Result<Stored, LogError>> {
    match log.tail(from).await {
        Ok(tail) => tail,
        Err(error) => panic!("tail({from}) failed: {error}"),
    }
}

async fn next_stored(
    tail: &mut BoxStream<'static, Result<Stored, LogError>>,
    what: &str,
) -> Stored {
    match tokio::time::timeout(PATIENCE, tail.next()).await {
        Ok(Some(Ok(stored))) => stored,
        Ok(Some(Err(error))) => panic!("tail failed while waiting for {what}: {error}"),
        Ok(None) => panic!("tail ended while waiting for {what}"),
        Err(_) => panic!("tail did not deliver {what} within {PATIENCE:?}"),
    }
}

/// On an empty log: the first append gets 1, and each next one the next number.
pub async fn sequences_start_at_one_and_are_gapless(log: &dyn EventLog) {
    assert_eq!(last_seq(log).await, 0, "a fresh log must be empty");
    let mut seqs = Vec::new();
    for i in 0..5 {
        let subject = subject("seq", "item", &format!("s{i}"));
        seqs.push(append_ok(log, &subject, 0, &format!("seq-{i}")).await);
    }
    assert_eq!(
        seqs,
        vec![1, 2, 3, 4, 5],
        "sequences start at 1 and have no gaps"
    );
    assert_eq!(
        last_seq(log).await,
        5,
        "last_seq is the last appended sequence"
    );

    let mut tail = open_tail(log, 1).await;
    for (i, expected) in seqs.iter().enumerate() {
        let stored = next_stored(&mut tail, "a stored message").await;
        assert_eq!(
            stored.seq, *expected,
            "tail yields messages in sequence order"
        );
        assert_eq!(
            stored.subject,
            format!("reg.conf-seq.item.s{i}"),
            "tail keeps subjects"
        );
        assert_eq!(
            stored.data,
            format!("{}/seq-{i}", stored.subject).into_bytes()
        );
    }
}

/// Creation expects 0; an update expects the current last sequence; anything else conflicts.
pub async fn expected_sequence_guards_writes(log: &dyn EventLog) {
    let subject = subject("expect", "model", "m1");
    let created = append_ok(log, &subject, 0, "expect-1").await;

    let second_create = log.append(&subject, 0, "expect-2", b"again".to_vec()).await;
    assert!(
        matches!(second_create, Err(AppendError::Conflict { expected: 0 })),
        "a second create (expected 0) must conflict, got {second_create:?}"
    );

    let updated = append_ok(log, &subject, created, "expect-3").await;
    assert!(
        updated > created,
        "an update with the current last sequence succeeds"
    );

    let stale = log
        .append(&subject, created, "expect-4", b"stale".to_vec())
        .await;
    assert!(
        matches!(stale, Err(AppendError::Conflict { expected }) if expected == created),
        "an update with a stale expected sequence must conflict, got {stale:?}"
    );
    let too_new = log
        .append(&subject, updated + 100, "expect-5", b"future".to_vec())
        .await;
    assert!(
        matches!(too_new, Err(AppendError::Conflict { .. })),
        "an expected sequence beyond the last one must conflict, got {too_new:?}"
    );
    assert_eq!(
        subject_last(log, &subject).await,
        updated,
        "conflicts write nothing"
    );
    assert_eq!(last_seq(log).await, updated, "conflicts write nothing");
}

/// A repeated message id answers with the original position and writes nothing, even when
/// the retry carries an expected sequence that has gone stale meanwhile.
pub async fn duplicate_message_ids_write_nothing(log: &dyn EventLog) {
    let subject = subject("dedup", "model", "m1");
    let first = match log.append(&subject, 0, "dedup-1", b"first".to_vec()).await {
        Ok(appended) => appended,
        Err(error) => panic!("first append failed: {error}"),
    };
    assert!(!first.duplicate, "a new message id is not a duplicate");
    let length = last_seq(log).await;

    // A retry of the create: expected 0 is stale now, but dedup is checked first.
    let retry = log.append(&subject, 0, "dedup-1", b"first".to_vec()).await;
    assert!(
        matches!(retry, Ok(Appended { seq, duplicate: true }) if seq == first.seq),
        "a retried message id must return the original sequence {} as a duplicate, got {retry:?}",
        first.seq
    );
    // Same id, current expected sequence, different data: still the original.
    let retry = log
        .append(&subject, first.seq, "dedup-1", b"other".to_vec())
        .await;
    assert!(
        matches!(retry, Ok(Appended { seq, duplicate: true }) if seq == first.seq),
        "a duplicate is decided by message id alone, got {retry:?}"
    );
    assert_eq!(
        last_seq(log).await,
        length,
        "a duplicate does not grow the log"
    );
    assert_eq!(
        subject_last(log, &subject).await,
        first.seq,
        "a duplicate does not move the subject"
    );

    let next = append_ok(log, &subject, first.seq, "dedup-2").await;
    assert_eq!(
        next,
        length + 1,
        "after duplicates the next append takes the next sequence"
    );
}

/// Each subject has its own last sequence; an unknown subject has 0.
pub async fn subject_last_seq_is_per_subject(log: &dyn EventLog) {
    let a = subject("per-subject", "model", "a");
    let b = subject("per-subject", "model", "b");
    assert_eq!(
        subject_last(log, &a).await,
        0,
        "an unknown subject has last sequence 0"
    );

    let a1 = append_ok(log, &a, 0, "per-subject-a1").await;
    let b1 = append_ok(log, &b, 0, "per-subject-b1").await;
    assert_eq!(subject_last(log, &a).await, a1);
    assert_eq!(subject_last(log, &b).await, b1);

    let a2 = append_ok(log, &a, a1, "per-subject-a2").await;
    assert_eq!(
        subject_last(log, &a).await,
        a2,
        "the subject's last sequence moves with it"
    );
    assert_eq!(
        subject_last(log, &b).await,
        b1,
        "other subjects do not move"
    );
}

/// `tail(from)` yields exactly the suffix from `from`, in order, then new messages.
pub async fn tail_from_the_middle_then_follows(log: &dyn EventLog) {
    let base = last_seq(log).await;
    let mut seqs = Vec::new();
    for i in 0..10 {
        let subject = subject("tail", "item", &format!("t{i}"));
        seqs.push(append_ok(log, &subject, 0, &format!("tail-{i}")).await);
    }
    assert_eq!(seqs, ((base + 1)..=(base + 10)).collect::<Vec<_>>());

    let from = base + 4;
    let mut tail = open_tail(log, from).await;
    for expected in from..=(base + 10) {
        let stored = next_stored(&mut tail, "the stored suffix").await;
        assert_eq!(
            stored.seq, expected,
            "tail({from}) yields the suffix in order"
        );
        let i = expected - base - 1;
        assert_eq!(stored.subject, format!("reg.conf-tail.item.t{i}"));
    }

    // Caught up: the tail now waits for, and then delivers, a new message.
    let late_subject = subject("tail", "item", "late");
    let late = append_ok(log, &late_subject, 0, "tail-late").await;
    let stored = next_stored(&mut tail, "a message appended after the tail caught up").await;
    assert_eq!(stored.seq, late, "the tail follows new appends");
    assert_eq!(stored.subject, late_subject.as_str());
    assert_eq!(
        stored.data,
        format!("{late_subject}/tail-late").into_bytes()
    );

    // A tail from beyond the end waits for that position.
    let mut ahead = open_tail(log, late + 1).await;
    let next = append_ok(log, &subject("tail", "item", "ahead"), 0, "tail-ahead").await;
    let stored = next_stored(&mut ahead, "the first message of a tail opened at the end").await;
    assert_eq!(
        stored.seq, next,
        "a tail opened at the end starts with the next append"
    );
}

/// 200 concurrent appends to distinct subjects all succeed, with distinct, gapless sequences.
pub async fn concurrent_appends_to_distinct_subjects(log: &dyn EventLog) {
    const N: u64 = 200;
    let base = last_seq(log).await;
    let subjects: Vec<Subject> = (0..N)
        .map(|i| subject("concurrent", "item", &format!("c{i}")))
        .collect();
    let msg_ids: Vec<String> = (0..N).map(|i| format!("concurrent-{i}")).collect();
    let appends = subjects
        .iter()
        .zip(&msg_ids)
        .map(|(subject, msg_id)| log.append(subject, 0, msg_id, vec![1]));
    let results = join_all(appends).await;
    let mut seqs = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(Appended {
                seq,
                duplicate: false,
            }) => seqs.push(seq),
            other => panic!("concurrent append {i} must succeed, got {other:?}"),
        }
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        ((base + 1)..=(base + N)).collect::<Vec<_>>(),
        "concurrent appends get distinct, gapless sequences"
    );
    assert_eq!(last_seq(log).await, base + N);
}

/// Concurrent writers of one subject with the same expected sequence: exactly one wins.
pub async fn concurrent_appends_to_one_subject_one_wins(log: &dyn EventLog) {
    const N: usize = 20;
    for (round, id) in ["create", "update"].into_iter().enumerate() {
        let subject = subject("race", "model", id);
        let expected = match round {
            0 => 0,
            _ => append_ok(log, &subject, 0, "race-update-setup").await,
        };
        let msg_ids: Vec<String> = (0..N).map(|i| format!("race-{id}-{i}")).collect();
        let appends = msg_ids
            .iter()
            .map(|msg_id| log.append(&subject, expected, msg_id, vec![2]));
        let results = join_all(appends).await;
        let winners = results.iter().filter(|result| result.is_ok()).count();
        let conflicts = results
            .iter()
            .filter(|result| {
                matches!(result, Err(AppendError::Conflict { expected: e }) if *e == expected)
            })
            .count();
        assert_eq!(
            winners, 1,
            "exactly one concurrent {id} wins, got {results:?}"
        );
        assert_eq!(
            conflicts,
            N - 1,
            "every other concurrent {id} conflicts, got {results:?}"
        );
        let winner = results
            .iter()
            .find_map(|result| result.as_ref().ok().map(|a| a.seq));
        assert_eq!(
            winner,
            Some(subject_last(log, &subject).await),
            "the winner is on the subject"
        );
    }
}
