//! What a pipeline worker links beside its LLM calls: [`inspect`] of a chat response (pure:
//! which tool calls a token limit cut, logged as the seed's `TOOL-LOOP` line), a resolve
//! [`client`] whose cache follows the registry's position, and [`check`] of the features a
//! step wants against a resolved model, with the registry's own rules. It speaks HTTP to a
//! registry and never links a server-side crate.

pub mod check;
pub mod client;
pub mod inspect;

pub use check::{Checked, check};
pub use client::{Client, ClientError};
pub use inspect::{Call, Inspection, Shape, StreamAggregator, ToolCall, Truncation, inspect};
