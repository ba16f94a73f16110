//! The one write path. Every command runs through [`execute`]: it decides in `domain`, builds
//! the envelope, derives the message id, appends with the expected sequence, recognises a
//! retry of a command that landed already, and waits until the local views reflect the
//! append (read your writes). Handlers look state and facts up; none builds an envelope.

use domain::Aggregate;
use eventlog::{AppendError, Appended, Envelope, SCHEMA_VERSION, Subject};
use views::StreamPos;

use crate::{AppError, Ctx, Registry};

/// The aggregate a command goes to, as the views know it.
#[derive(Clone, Copy)]
pub(crate) struct Stream<'a> {
    /// The aggregate's id: the last token of its subject.
    pub id: &'a str,
    /// Where its stream stands; `None` for a creation, which expects an empty subject.
    pub at: Option<&'a StreamPos>,
    /// The command of the aggregate's last change, where the views keep it: the same
    /// command again is a retry of one that landed.
    pub last_command: Option<&'a str>,
}

impl<'a> Stream<'a> {
    pub(crate) fn new(id: &'a str, at: Option<&'a StreamPos>) -> Self {
        Self {
            id,
            at,
            last_command: None,
        }
    }
}

/// What a command did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Done {
    /// It appended an event; the views reflect it at `position`.
    Appended { position: u64 },
    /// It had landed before (a retry): nothing appended; the views reflect it at `position`.
    Retried { position: u64 },
    /// The command changes nothing: no event.
    Unchanged { position: u64 },
}

impl Done {
    pub(crate) fn position(self) -> u64 {
        match self {
            Self::Appended { position }
            | Self::Retried { position }
            | Self::Unchanged { position } => position,
        }
    }
}

/// Why a command did not append.
#[derive(Debug)]
pub(crate) enum Refused<R> {
    /// The domain refused it.
    Rejected(R),
    /// The aggregate changed since it was read (optimistic concurrency): re-read and retry.
    Conflict,
    Failed(AppError),
}

impl<R> From<AppError> for Refused<R> {
    fn from(error: AppError) -> Self {
        Self::Failed(error)
    }
}

/// Decides `command` against `state` and appends its event to `stream`, then waits for the
/// views to reflect it.
pub(crate) async fn execute<A: Aggregate>(
    registry: &Registry,
    ctx: &Ctx,
    stream: Stream<'_>,
    state: Option<&A>,
    command: A::Command,
) -> Result<Done, Refused<A::Rejection>> {
    let event = match decide::<A>(ctx, stream, state, command)? {
        Decision::Append(event) => event,
        Decision::Retried => {
            return Ok(Done::Retried {
                position: registry.views.position(),
            });
        }
        Decision::Unchanged => {
            return Ok(Done::Unchanged {
                position: registry.views.position(),
            });
        }
    };
    let appended = append::<A>(registry, ctx, stream, event).await?;
    let position = registry.settle(appended.seq).await?;
    Ok(if appended.duplicate {
        Done::Retried { position }
    } else {
        Done::Appended { position }
    })
}

/// What [`decide`] found to do.
pub(crate) enum Decision<E> {
    /// Append this event.
    Append(E),
    /// The command landed before (the aggregate's last change was this command).
    Retried,
    /// The command changes nothing.
    Unchanged,
}

/// The first half of [`execute`]: recognises a retry of a command that landed (refusing a
/// client's key reused for another request), and decides.
/// For commands that append to several aggregates (a credential, then the model using it),
/// which decide them all before appending any, so a refused command leaves nothing behind.
pub(crate) fn decide<A: Aggregate>(
    ctx: &Ctx,
    stream: Stream<'_>,
    state: Option<&A>,
    command: A::Command,
) -> Result<Decision<A::Event>, Refused<A::Rejection>> {
    if stream
        .last_command
        .is_some_and(|last| last == ctx.command_id)
    {
        // A retry of the aggregate's last change. One sent again under the sender's key
        // must ask for what the first attempt did: decided against the state that attempt
        // left, it changes nothing (or is refused as done). One that would change more is
        // another request under a reused key.
        let another_request =
            ctx.keyed && A::decide(state, command).is_ok_and(|events| !events.is_empty());
        if another_request {
            return Err(Refused::Failed(AppError::idempotency_key_reused()));
        }
        return Ok(Decision::Retried);
    }
    let mut events = A::decide(state, command)
        .map_err(Refused::Rejected)?
        .into_iter();
    let Some(event) = events.next() else {
        return Ok(Decision::Unchanged);
    };
    if events.next().is_some() {
        return Err(Refused::Failed(AppError::internal(format!(
            "a command decided more than one {} event",
            A::KIND
        ))));
    }
    Ok(Decision::Append(event))
}

/// The second half of [`execute`], without waiting for the views: appends one decided event
/// of one aggregate. The message id is derived from the command id and the aggregate kind, so
/// a retried command appends nothing twice (the log answers with the first append's position
/// and `duplicate`); the expected last sequence makes the append conditional on the stream
/// the command read (0 for a creation: the subject must be empty).
pub(crate) async fn append<A: Aggregate>(
    registry: &Registry,
    ctx: &Ctx,
    stream: Stream<'_>,
    event: A::Event,
) -> Result<Appended, Refused<A::Rejection>> {
    let kind = A::KIND;
    let event = A::wrap(event);
    let storage = |what: String| Refused::Failed(AppError::internal(what));
    if ctx.command_id.is_empty() {
        // Reads carry no command id; one reaching here is a defect, and an empty id would
        // make unrelated appends look like retries of each other.
        return Err(storage("an append without a command id".into()));
    }
    let subject = Subject::new(ctx.org.as_str(), kind, stream.id)
        .map_err(|e| storage(format!("no subject for {kind} {}: {e}", stream.id)))?;
    let envelope = Envelope {
        schema_version: SCHEMA_VERSION,
        event_id: *uuid::Uuid::now_v7().as_bytes(),
        org: ctx.org.as_str().to_owned(),
        kind: kind.to_owned(),
        aggregate_id: stream.id.to_owned(),
        aggregate_version: stream.at.map_or(1, |s| s.version + 1),
        recorded_at_ms: registry.now_ms(),
        actor: ctx.actor.clone(),
        request_id: ctx.request_id.clone(),
        command_id: ctx.command_id.clone(),
        prev_hash: stream.at.map_or([0; 32], |s| s.last_hash),
        payload: event.encode(),
        payload_version: domain::event::PAYLOAD_VERSION,
        client_addr: ctx.client_addr.clone(),
    };
    let msg_id = format!("{}:{}:{kind}", ctx.org, ctx.command_id);
    let expected = stream.at.map_or(0, |s| s.last_seq);
    let appended = match registry
        .log
        .append(&subject, expected, &msg_id, envelope.encode())
        .await
    {
        Ok(appended) => appended,
        Err(AppendError::Conflict { .. }) => return Err(Refused::Conflict),
        Err(AppendError::Log(error)) => return Err(Refused::Failed(error.into())),
    };
    tracing::debug!(
        event = event.name(),
        seq = appended.seq,
        duplicate = appended.duplicate,
        "appended"
    );
    Ok(appended)
}
