//! The pure core of marathon-lb: Marathon JSON in, HAProxy config out.
//!
//! Nothing here does I/O, reads a clock or touches global state: the same
//! input always gives the same bytes. The thin shells around it (Marathon
//! client, plugin host, HAProxy apply) live in the `marathon-lb` crate.
//!
//! ```text
//! /v2/apps JSON ──normalize──▶ [App] ──(label interpreter)──▶ [Service] ──render──▶ haproxy.cfg + maps
//! ```
//!
//! # Layout
//! - [`normalize`]: `/v2/apps?embed=apps.tasks` → [`mlb_model::App`]s, one bad app
//!   costing only itself.
//! - [`interpreter`]: the [`LabelInterpreter`] trait that WASM and native label
//!   rules implement.
//! - [`templates`]: the 53 default templates, their override rules and HEAD;
//!   [`TemplateName`] names them (one list, checked against
//!   `templates/manifest.txt`), so a misspelt template is a compile error.
//! - [`format`]: marathon-lb's `{name}` template syntax, translated to minijinja.
//! - [`engine`]: the minijinja environment that renders translated templates.
//! - [`render`]: services → config text and map files (marathon-lb's `config`);
//!   the vhost ACLs are planned as data (`render::vhost_plan`), then rendered.
//! - [`validate`]: checks on services a custom label plugin returned.

#![forbid(unsafe_code)]

pub mod engine;
pub mod format;
pub mod interpreter;
pub mod normalize;
pub mod render;
pub mod templates;
pub mod validate;

pub use interpreter::{InterpretError, Interpretation, LabelInterpreter};
pub use normalize::{NormalizeError, Normalized, normalize_apps};
pub use render::{RenderSettings, Rendered, render};
pub use templates::{TemplateError, TemplateName, TemplateSources, Templates, UnknownTemplate};
