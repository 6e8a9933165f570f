//! Builds and runs the server: connect and migrate the store, load the keys, bind the listener,
//! serve until asked to stop, then drain in-flight requests.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::config::ServeConfig;
use crate::http::{AppState, router};
use crate::mail;
use crate::provisioning::tokens::Keys;
use crate::provisioning::{Provisioner, Settings};
use crate::scim::schema::Registry;
use crate::store::Store;

pub struct Application {
    listener: TcpListener,
    state: AppState,
    address: SocketAddr,
    mail: mail::worker::WorkerConfig,
}

impl Application {
    /// Connects, migrates and binds; the returned application is ready to [`run`](Self::run).
    pub async fn build(config: ServeConfig) -> anyhow::Result<Self> {
        let registry = Arc::new(
            Registry::load()
                .map_err(anyhow::Error::msg)
                .context("loading schemas")?,
        );
        let store = Store::connect(&config.database_url)
            .await
            .context("connecting to the database")?;
        store.migrate().await.context("applying migrations")?;
        let keys = Keys::load(&store, config.jwt_secret.as_deref())
            .await
            .context("loading the signing key")?;
        let listener = TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let address = listener.local_addr()?;
        let mail = mail::worker::WorkerConfig {
            transport: mail::Transport::from_config(
                config.mail.smtp_url.as_deref(),
                &config.mail.mail_dir,
            )
            .map_err(anyhow::Error::msg)?,
            from: config
                .mail
                .from
                .parse()
                .map_err(|e| anyhow::anyhow!("--mail-from {:?}: {e}", config.mail.from))?,
            idle: config.mail.poll_interval,
        };
        let state = AppState {
            limiter: crate::http::account_limiter(config.rate_limit),
            provisioner: Provisioner::new(
                store,
                registry,
                keys,
                Settings {
                    max_group_depth: config.max_group_depth,
                    public_base: config
                        .public_url
                        .as_deref()
                        .map(|u| u.trim_end_matches('/').to_string())
                        .unwrap_or_else(|| format!("http://{address}")),
                    ..Settings::default()
                },
            ),
            config: Arc::new(config),
        };
        Ok(Application {
            listener,
            state,
            address,
            mail,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let store = self.state.provisioner.store().clone();
        let janitor = tokio::spawn(purge_periodically(self.state.provisioner.clone()));
        let (stop_mail, stop) = tokio::sync::watch::channel(false);
        let mail = tokio::spawn(mail::worker::run(store.clone(), self.mail, stop));
        axum::serve(self.listener, router(self.state))
            .with_graceful_shutdown(shutdown)
            .await?;
        janitor.abort();
        // The worker finishes the mail in hand; the rest waits in the outbox for the next start.
        let _ = stop_mail.send(true);
        let _ = mail.await;
        store.close().await;
        Ok(())
    }
}

/// The hourly housekeeping: purges soft-deleted users past their restore window, releases the
/// extension and number of users inactive past their quarantine, and expires old invitation
/// links (each with its audit event). Several servers on one database may all run it: every
/// step re-checks what it changes under a lock, so running twice does nothing twice.
async fn purge_periodically(provisioner: crate::provisioning::Provisioner) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        if let Err(e) = provisioner.store().refresh_statistics().await {
            tracing::warn!(error = %e, "refreshing the query planner's statistics failed; will retry");
        }
        match provisioner.purge_deleted_users().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                purged = n,
                "purged soft-deleted users past their restore window"
            ),
            Err(e) => tracing::warn!(error = %e, "purging soft-deleted users failed; will retry"),
        }
        match provisioner.release_expired_holds().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                released = n,
                "released the holds of users inactive past their quarantine"
            ),
            Err(e) => tracing::warn!(error = %e, "releasing expired holds failed; will retry"),
        }
        match provisioner.expire_invitations().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "invitation links expired"),
            Err(e) => tracing::warn!(error = %e, "expiring invitations failed; will retry"),
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: draining in-flight requests");
}
