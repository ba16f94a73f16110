//! The durable consumers' checks: delivery, acks and redelivery, nak delays, progress acks,
//! batches, settings changed on reopen, and state that survives a reopen.

use std::future::Future;
use std::time::Duration;

use super::{PATIENCE, append_ok, last_seq, subject, subject_last};
use crate::{Appended, Delivery, Durable, DurableConfig, EventLog};

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
