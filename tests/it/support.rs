//! Test support: a private nats-server per test, a typed client for the API, an in-process
//! registry on either backend, and log capture for the secret canary.

pub mod fake_provider;
pub mod logs;
pub mod nats;
pub mod registry;

pub use nats::NatsServer;
pub use registry::{Backend, Reply, TestApp};
