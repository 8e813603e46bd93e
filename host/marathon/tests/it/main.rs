//! mlb-marathon's integration tests, one binary (one link) for all: the
//! event-stream follower against the Marathon simulator and against
//! loopback DC/OS login and Marathon servers, and the REST client's DC/OS
//! login.

mod dcos_auth;
mod dcos_server;
mod sse_client;
mod support;
