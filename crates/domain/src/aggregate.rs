//! The seam every aggregate fits: `decide` a command against the state events made, and
//! `evolve` the state by an event. The application's one write path is written against it.

/// An aggregate of the registry: a stream of events under `reg.<org>.<KIND>.<id>`.
///
/// `decide` is pure: facts looked up elsewhere (a saved credential, the workflows that
/// reference a model, a receipt) arrive inside the command. It yields at most one event
/// (the log appends one event per aggregate per command), and none when the command changes
/// nothing.
pub trait Aggregate {
    /// The kind, as it appears in subjects.
    const KIND: &'static str;
    type Command;
    type Event;
    type Rejection;

    fn decide(
        state: Option<&Self>,
        command: Self::Command,
    ) -> Result<Vec<Self::Event>, Self::Rejection>;

    fn evolve(state: Option<Self>, event: &Self::Event) -> Option<Self>
    where
        Self: Sized;

    /// The event as the log's one event enum.
    fn wrap(event: Self::Event) -> crate::Event;
}

/// The state `events` make, for given/when/then tests and replays.
pub fn given<A: Aggregate>(events: &[A::Event]) -> Option<A> {
    events.iter().fold(None, A::evolve)
}

/// Implements [`Aggregate`] for the state type of an aggregate's module, with that module's
/// `Command`, `Event`, `Rejection`, `decide` and `evolve`, and its variant of the log's event.
macro_rules! aggregate {
    ($state:ident, $kind:ident, $variant:ident) => {
        impl $crate::Aggregate for $state {
            const KIND: &'static str = $crate::event::kind::$kind;
            type Command = Command;
            type Event = Event;
            type Rejection = Rejection;

            fn decide(state: Option<&Self>, command: Command) -> Result<Vec<Event>, Rejection> {
                decide(state, command)
            }

            fn evolve(state: Option<Self>, event: &Event) -> Option<Self> {
                evolve(state, event)
            }

            fn wrap(event: Event) -> $crate::Event {
                $crate::Event::$variant(event)
            }
        }
    };
}

pub(crate) use aggregate;
