//! Mail: the outbox worker, its transports (SMTP with lettre; a directory of `.eml` files for
//! local runs) and the invitation templates (minijinja).
//!
//! Mails are never sent from a request: the provisioning layer writes them to the `outbox`
//! table in the transaction of the change that causes them, and [`worker::run`] delivers them —
//! at least once, retried with exponential back-off, each with a `Message-ID` fixed at enqueue
//! time so that a retry is recognisable as the same mail.

pub mod templates;
pub mod transport;
pub mod worker;

pub use transport::Transport;
