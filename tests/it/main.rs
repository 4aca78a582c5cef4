//! The single integration-test binary: every module drives the real code over real HTTP.
mod api;
mod cli;
mod crash;
mod emulator;
mod lifecycle;
mod normalize;
mod readers;
mod retrieval;
mod service;
mod support;
mod sync;
