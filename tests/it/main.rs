//! The single integration-test binary: every module drives the real code over real HTTP.
mod emulator;
mod normalize;
