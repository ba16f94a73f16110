//! The registry's rules as pure functions over plain data: ids, providers and their credential
//! shapes, models, credentials and orgs, each as `decide(state, command) -> events` and
//! `evolve(state, event) -> state`.
//!
//! Architecture invariant: no IO, no async, no clock, no randomness. Time, ids and looked-up
//! facts arrive inside commands; the envelope (in `eventlog`) carries who and when.

pub mod advice;
pub mod aggregate;
pub mod catalog;
pub mod connection_test;
pub mod credential;
pub mod event;
pub mod known;
pub mod model;
pub mod org;
pub mod provider;
pub mod usage;
pub mod values;
pub mod workflow;

mod invalid;

pub use aggregate::Aggregate;
pub use event::Event;
pub use invalid::Invalid;
