//! Push notifications: task events POSTed to the webhooks clients register,
//! durably and safely.
//!
//! * **Configs** (`CreateTaskPushNotificationConfig` and friends, or
//!   `configuration.taskPushNotificationConfig` of a message) are stored
//!   with the task ([`crate::store::PushStore`]), scoped to its owner.
//! * **Delivery** is the second sink of every task event, after the store
//!   (see `Running::emit` in the core): one [`Notification`] per config is
//!   written to the outbox before the event is acknowledged, then POSTed
//!   as a `StreamResponse` in the task's order, off the task's path
//!   ([`Pusher`]).
//! * **The outbound stack** per receiver host is made of our own layers:
//!   concurrency limit, retry with jittered backoff and a budget, circuit
//!   breaker, per-attempt timeout; the outbox retries until
//!   [`PushSettings::deadline`], then gives the notification up.
//! * **The SSRF guard** ([`guard`]) refuses loopback, private, link-local,
//!   metadata and other non-public addresses unless allowed, resolves each
//!   host once and connects only to the addresses it checked.
//!
//! * **Replicas** sharing a PostgreSQL outbox each deliver what they
//!   claimed (their own events, renewed every [`OutboxReplica::renew_every`]);
//!   a replica that stops leaves claims that lapse after the lease, and a
//!   survivor takes them over ([`Sharing::Shared`]).
//!
//! Each request carries `Content-Type: application/json`, the config's
//! token in `X-A2A-Notification-Token`, its credentials in
//! `Authorization`, and the event's stable id in `X-A2A-Event-Id`, the
//! same across retries and restarts, so receivers can deduplicate.
//!
//! [`Notification`]: crate::store::Notification

mod deliver;
pub(crate) use deliver::parse_retry_after;
pub mod guard;
mod outbox;

pub use deliver::{DeliverySettings, EVENT_ID_HEADER, TOKEN_HEADER};
pub use outbox::{OutboxReplica, PushError, PushSettings, Pusher, Sharing};
