//! The end-to-end suite: one binary, modules per feature, against real nats-server
//! processes, real redb files and real HTTP servers on port 0.

mod support;

mod audit;
mod backup;
mod bad_input;
mod browser;
mod canary;
mod catalog;
mod cli;
mod cluster;
mod connection_tests;
mod console;
mod crash;
mod credentials;
mod dependents;
mod evolution;
mod litellm;
mod openapi;
mod paging;
mod readme;
mod recovery;
mod retries;
mod runtime;
mod scenario;
mod tamper;
mod tidy;
mod tokens;
mod usage;
