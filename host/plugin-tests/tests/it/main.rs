//! The example plugins and every plugin failure mode against the real
//! plugin host, one binary (one link) for all: loading checks, failure
//! modes, the examples, and traffic through HAProxy.

mod examples;
mod failure_modes;
mod loading;
mod support;
mod traffic;
