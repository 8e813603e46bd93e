//! mlb-haproxy's integration tests, one binary (one link) for all: the
//! supervisor against a real HAProxy 2.6 on loopback, and what a custom
//! HEAD gets in supervised mode (`haproxy -c`).

mod runtime;
mod supervised_head;
mod supervisor;
