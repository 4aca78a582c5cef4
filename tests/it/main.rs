//! The single integration-test binary: every module drives the real code over real HTTP.
mod api;
mod cli;
mod crash;
mod emulator;
mod faults;
mod hostile;
mod hybrid;
mod lifecycle;
mod normalize;
mod readers;
mod realdata;
mod retrieval;
mod scale;
mod service;
mod support;
mod sync;
