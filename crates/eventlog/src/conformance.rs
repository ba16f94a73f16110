//! The conformance suite every [`EventLog`] backend must pass, run by each backend's tests.
//!
//! [`run_all`] expects a fresh, empty log. The individual checks only assume that nobody
//! else appends while they run: each works relative to the log's position when it starts,
//! except [`sequences_start_at_one_and_are_gapless`], which needs an empty log.
//! Every check uses its own subjects (`reg.conf-<check>.…`) and durable names.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use futures::future::join_all;
use futures::stream::BoxStream;

use crate::{
    AppendError, Appended, Delivery, Durable, DurableConfig, EventLog, LogError, Stored, Subject,
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

async fn next_delivery(durable: &mut dyn Durable, wait: Duration) -> Option<Delivery> {
    match durable.next(wait).await {
        Ok(delivery) => delivery,
        Err(error) => panic!("durable next failed: {error}"),
    }
}

fn durable_config(name: &str, filter: &str, ack_wait: Duration, max_deliver: u64) -> DurableConfig {
    DurableConfig {
        name: name.into(),
        filter: filter.into(),
        ack_wait,
        max_deliver,
        batch: 1,
    }
}

/// Deliver, ack, redeliver an unacked message after `ack_wait` with attempt 2, and a
/// reopened durable (same name) does not redeliver acked messages.
pub async fn durable_delivers_acks_and_redelivers(log: &dyn EventLog) {
    let ack_wait = Duration::from_secs(1);
    let config = durable_config("conf-worker", "reg.conf-durable.job.*", ack_wait, 5);
    let job_a = append_ok(log, &subject("durable", "job", "a"), 0, "durable-a").await;
    append_ok(log, &subject("durable", "other", "x"), 0, "durable-x").await;
    let job_b = append_ok(log, &subject("durable", "job", "b"), 0, "durable-b").await;

    let mut durable = match log.durable(config.clone()).await {
        Ok(durable) => durable,
        Err(error) => panic!("opening a durable failed: {error}"),
    };
    let first = next_delivery(durable.as_mut(), PATIENCE)
        .await
        .expect("the first job is delivered");
    assert_eq!(
        first.stored.seq, job_a,
        "deliveries start at the log's beginning, filtered"
    );
    assert_eq!(first.stored.subject, "reg.conf-durable.job.a");
    assert_eq!(first.attempt, 1, "a first delivery is attempt 1");
    if let Err(error) = first.ack().await {
        panic!("ack failed: {error}");
    }

    let second = next_delivery(durable.as_mut(), PATIENCE)
        .await
        .expect("the second job is delivered");
    assert_eq!(
        second.stored.seq, job_b,
        "messages outside the filter are skipped"
    );
    assert_eq!(second.attempt, 1);
    let delivered_at = tokio::time::Instant::now();
    drop(second); // not acked: must come back after ack_wait

    let again = next_delivery(durable.as_mut(), PATIENCE)
        .await
        .expect("the unacked job is redelivered");
    assert_eq!(
        again.stored.seq, job_b,
        "the unacked message is redelivered"
    );
    assert_eq!(again.attempt, 2, "a redelivery counts the attempt");
    assert!(
        delivered_at.elapsed() >= ack_wait / 2,
        "redelivery waits for ack_wait, came after {:?}",
        delivered_at.elapsed()
    );
    if let Err(error) = again.ack().await {
        panic!("ack of the redelivery failed: {error}");
    }
    let nothing = next_delivery(durable.as_mut(), Duration::from_millis(300)).await;
    assert!(
        nothing.is_none(),
        "acked messages are not redelivered, got {:?}",
        nothing.map(|d| d.stored)
    );
    drop(durable);

    let mut reopened = match log.durable(config).await {
        Ok(durable) => durable,
        Err(error) => panic!("reopening a durable failed: {error}"),
    };
    let nothing = next_delivery(reopened.as_mut(), Duration::from_millis(500)).await;
    assert!(
        nothing.is_none(),
        "a reopened durable must not redeliver acked messages, got {:?}",
        nothing.map(|d| d.stored)
    );
    let job_c = append_ok(log, &subject("durable", "job", "c"), 0, "durable-c").await;
    let third = next_delivery(reopened.as_mut(), PATIENCE)
        .await
        .expect("a new job reaches the reopened durable");
    assert_eq!(third.stored.seq, job_c);
    assert_eq!(third.attempt, 1);
    if let Err(error) = third.ack().await {
        panic!("ack failed: {error}");
    }
}

/// After `max_deliver` unacked deliveries a message is given up.
pub async fn durable_gives_up_after_max_deliver(log: &dyn EventLog) {
    let ack_wait = Duration::from_millis(500);
    let config = durable_config("conf-giveup", "reg.conf-giveup.job.*", ack_wait, 2);
    let job = append_ok(log, &subject("giveup", "job", "a"), 0, "giveup-a").await;
    let mut durable = match log.durable(config).await {
        Ok(durable) => durable,
        Err(error) => panic!("opening a durable failed: {error}"),
    };
    for attempt in 1..=2 {
        match durable.next(PATIENCE).await {
            Ok(Some(delivery)) => {
                assert_eq!(delivery.stored.seq, job);
                assert_eq!(delivery.attempt, attempt, "deliveries count attempts");
            }
            other => panic!(
                "delivery {attempt} expected, got {:?}",
                other.map(|d| d.map(|d| d.stored))
            ),
        }
    }
    match durable.next(ack_wait * 3).await {
        Ok(None) => {}
        other => panic!(
            "after max_deliver deliveries the message is given up, got {:?}",
            other.map(|d| d.map(|d| (d.stored, d.attempt)))
        ),
    }
}

/// Reopening a durable with other settings (filter included) updates it, as a JetStream
/// create-or-update does, and it keeps working.
pub async fn durable_settings_change_on_reopen(log: &dyn EventLog) {
    let first = durable_config(
        "conf-reconfig",
        "reg.conf-reconfig.a.*",
        Duration::from_secs(1),
        3,
    );
    let durable = match log.durable(first).await {
        Ok(durable) => durable,
        Err(error) => panic!("opening a durable failed: {error}"),
    };
    drop(durable);
    let second = durable_config(
        "conf-reconfig",
        "reg.conf-reconfig.b.*",
        Duration::from_secs(2),
        5,
    );
    let mut durable = match log.durable(second).await {
        Ok(durable) => durable,
        Err(error) => panic!("reopening a durable with new settings must succeed: {error}"),
    };
    let seq = append_ok(log, &subject("reconfig", "b", "x"), 0, "reconfig-b").await;
    let delivery = next_delivery(durable.as_mut(), PATIENCE)
        .await
        .expect("the reconfigured durable delivers under its new filter");
    assert_eq!(delivery.stored.seq, seq);
    assert_eq!(delivery.attempt, 1);
    if let Err(error) = delivery.ack().await {
        panic!("ack failed: {error}");
    }
}

async fn open_durable(log: &dyn EventLog, config: DurableConfig) -> Box<dyn Durable> {
    match log.durable(config).await {
        Ok(durable) => durable,
        Err(error) => panic!("opening a durable failed: {error}"),
    }
}

/// A nak gives the message back for redelivery after its delay, long before the ack wait,
/// as the next attempt; a nak of the last allowed delivery gives it up.
pub async fn durable_nak_redelivers_after_the_delay(log: &dyn EventLog) {
    let ack_wait = Duration::from_secs(30);
    let delay = Duration::from_millis(400);
    let config = durable_config("conf-nak", "reg.conf-nak.job.*", ack_wait, 3);
    let job = append_ok(log, &subject("nak", "job", "a"), 0, "nak-a").await;
    let mut durable = open_durable(log, config).await;
    let mut nakked_at = None;
    for attempt in 1..=3 {
        // PATIENCE is a third of the ack wait: a redelivery within it came from the nak.
        let delivery = next_delivery(durable.as_mut(), PATIENCE)
            .await
            .unwrap_or_else(|| panic!("a nakked job is delivered again (attempt {attempt})"));
        assert_eq!(delivery.stored.seq, job);
        assert_eq!(
            delivery.attempt, attempt,
            "a nakked message comes back as the next attempt"
        );
        if let Some(nakked_at) = nakked_at {
            let waited = tokio::time::Instant::now() - nakked_at;
            assert!(
                waited >= delay / 2,
                "a nakked message waits for its delay, came after {waited:?}"
            );
        }
        nakked_at = Some(tokio::time::Instant::now());
        if let Err(error) = delivery.nak(delay).await {
            panic!("nak failed: {error}");
        }
    }
    let after_last = next_delivery(durable.as_mut(), delay * 3).await;
    assert!(
        after_last.is_none(),
        "a nak of the last allowed delivery gives the message up, got {:?}",
        after_last.map(|d| (d.stored, d.attempt))
    );
}

/// While the holder says it is still working, the ack wait starts over: the delivery is
/// not handed out again. Once it stops, the message comes back after the ack wait.
pub async fn durable_in_progress_holds_the_delivery(log: &dyn EventLog) {
    let ack_wait = Duration::from_secs(1);
    let config = durable_config("conf-progress", "reg.conf-progress.job.*", ack_wait, 5);
    let job = append_ok(log, &subject("progress", "job", "a"), 0, "progress-a").await;
    let mut durable = open_durable(log, config).await;
    let held = next_delivery(durable.as_mut(), PATIENCE)
        .await
        .expect("the job is delivered");
    assert_eq!((held.stored.seq, held.attempt), (job, 1));
    let started = tokio::time::Instant::now();
    // Three ack waits' worth of work, reporting progress a few times per ack wait.
    while started.elapsed() < ack_wait * 3 {
        if let Err(error) = held.in_progress().await {
            panic!("in_progress failed: {error}");
        }
        let stolen = next_delivery(durable.as_mut(), ack_wait / 4).await;
        assert!(
            stolen.is_none(),
            "a delivery in progress must not be delivered again, got {:?} after {:?}",
            stolen.map(|d| (d.stored.seq, d.attempt)),
            started.elapsed()
        );
    }
    drop(held);
    let again = next_delivery(durable.as_mut(), PATIENCE)
        .await
        .expect("once progress stops, the job comes back after the ack wait");
    assert_eq!((again.stored.seq, again.attempt), (job, 2));
    if let Err(error) = again.ack().await {
        panic!("ack failed: {error}");
    }
}

/// A durable that fetches in batches hands out every message once, in order, whether the
/// messages were there before it started or arrive later; unacked ones come back.
pub async fn durable_batches_deliver_in_order(log: &dyn EventLog) {
    let ack_wait = Duration::from_secs(1);
    let mut config = durable_config("conf-batch", "reg.conf-batch.job.*", ack_wait, 5);
    config.batch = 4;
    let mut expected = Vec::new();
    for i in 0..10 {
        let job = subject("batch", "job", &format!("b{i}"));
        expected.push(append_ok(log, &job, 0, &format!("batch-{i}")).await);
        append_ok(
            log,
            &subject("batch", "other", &format!("o{i}")),
            0,
            &format!("batch-o{i}"),
        )
        .await;
    }
    let mut durable = open_durable(log, config).await;
    let started = tokio::time::Instant::now();
    let mut seen = Vec::new();
    let mut unacked = None;
    while seen.len() < expected.len() {
        let delivery = next_delivery(durable.as_mut(), PATIENCE)
            .await
            .expect("every waiting job is delivered");
        assert_eq!(delivery.attempt, 1);
        seen.push(delivery.stored.seq);
        let acked = match seen.len() {
            // One left unacked, to come back after the ack wait.
            5 => {
                unacked = Some(delivery.stored.seq);
                Ok(())
            }
            n if n % 2 == 0 => delivery.ack_unconfirmed().await,
            _ => delivery.ack().await,
        };
        if let Err(error) = acked {
            panic!("ack failed: {error}");
        }
    }
    assert_eq!(seen, expected, "a batched durable keeps the log's order");
    assert!(
        started.elapsed() < ack_wait,
        "waiting messages are handed out at once, took {:?}",
        started.elapsed()
    );
    let late = append_ok(log, &subject("batch", "job", "late"), 0, "batch-late").await;
    let mut rest = Vec::new();
    while rest.len() < 2 {
        let delivery = next_delivery(durable.as_mut(), PATIENCE)
            .await
            .expect("the late job and the unacked one are delivered");
        rest.push((delivery.stored.seq, delivery.attempt));
        if let Err(error) = delivery.ack().await {
            panic!("ack failed: {error}");
        }
    }
    rest.sort_unstable();
    let unacked = unacked.expect("one job was left unacked");
    assert_eq!(rest, vec![(unacked, 2), (late, 1)]);
    let nothing = next_delivery(durable.as_mut(), ack_wait + ack_wait / 2).await;
    assert!(
        nothing.is_none(),
        "acked messages of a batch are not delivered again, got {:?}",
        nothing.map(|d| (d.stored, d.attempt))
    );
}

/// Restart semantics: data, acks and pending deliveries survive closing and reopening the
/// log. `reopen(round)` opens the same log again (round 0 opens it first, on an empty log);
/// this function drops every handle before calling it again.
pub async fn durable_survives_reopen<F, Fut, L>(mut reopen: F)
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = L>,
    L: EventLog,
{
    let ack_wait = Duration::from_secs(1);
    let config = durable_config("conf-restart", "reg.conf-restart.job.*", ack_wait, 5);
    let (one, two, three) = {
        let log = reopen(0).await;
        assert_eq!(last_seq(&log).await, 0, "reopen(0) must give an empty log");
        let one = append_ok(&log, &subject("restart", "job", "1"), 0, "restart-1").await;
        let two = append_ok(&log, &subject("restart", "job", "2"), 0, "restart-2").await;
        let three = append_ok(&log, &subject("restart", "job", "3"), 0, "restart-3").await;
        let mut durable = log.durable(config.clone()).await.expect("open durable");
        let first = durable
            .next(PATIENCE)
            .await
            .expect("next")
            .expect("first delivery");
        assert_eq!(first.stored.seq, one);
        first.ack().await.expect("ack");
        let second = durable
            .next(PATIENCE)
            .await
            .expect("next")
            .expect("second delivery");
        assert_eq!(second.stored.seq, two);
        // Left unacked across the restart.
        (one, two, three)
    };

    {
        let log = reopen(1).await;
        assert_eq!(last_seq(&log).await, three, "the data survives a reopen");
        assert_eq!(
            subject_last(&log, &subject("restart", "job", "1")).await,
            one
        );
        let retry = log
            .append(&subject("restart", "job", "1"), 0, "restart-1", vec![])
            .await;
        assert!(
            matches!(retry, Ok(Appended { seq, duplicate: true }) if seq == one),
            "message ids survive a reopen, got {retry:?}"
        );
        let mut durable = log.durable(config.clone()).await.expect("reopen durable");
        // The unacked message comes back (at once, or after ack_wait as JetStream does it);
        // the new one may come first. The acked one never does.
        let mut seen = Vec::new();
        for _ in 0..2 {
            let delivery = durable
                .next(PATIENCE)
                .await
                .expect("next")
                .expect("a delivery");
            seen.push((delivery.stored.seq, delivery.attempt));
            delivery.ack().await.expect("ack");
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            vec![(two, 2), (three, 1)],
            "after a reopen: the unacked message again with attempt 2, the new one with \
             attempt 1, and not the acked one"
        );
    }

    let log = reopen(2).await;
    let mut durable = log.durable(config).await.expect("reopen durable");
    let nothing = durable
        .next(Duration::from_millis(500))
        .await
        .expect("next");
    assert!(
        nothing.is_none(),
        "acked messages stay acked across reopens, got {:?}",
        nothing.map(|d| d.stored)
    );
}
