//! Integration tests of the Marathon simulator over HTTP (one test binary, one module per area).

mod admin;
mod auth;
mod cli;
mod common;
mod deploy;
mod events;
mod faults;
mod lifecycle;
mod rest;
