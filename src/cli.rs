//! The operator's command line. The subcommands and their output are a contract that scripts
//! depend on: `token create` prints the token alone on stdout; everything else that is not the
//! requested output goes to stderr.

use clap::{Args, Parser, Subcommand, ValueEnum};
use uuid::Uuid;

use crate::app::{Application, shutdown_signal};
use crate::config::ServeConfig;
use crate::provisioning::render::timestamp;
use crate::provisioning::tokens::Keys;
use crate::provisioning::{TokenRole, accounts};
use crate::store::{DEFAULT_DATABASE_URL, Store};
use crate::telemetry;

#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about = "SCIM 2.0 provisioning server for a cloud phone system"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct DatabaseArg {
    /// Database URL: sqlite://PATH (embedded, the default) or postgres://USER@HOST/DB.
    #[arg(long = "database", env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub url: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (creates account "default" and prints a token on an empty database).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Manage accounts (tenants).
    Account {
        #[command(subcommand)]
        command: AccountCommand,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Manage bearer tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
        #[command(flatten)]
        database: DatabaseArg,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    #[command(flatten)]
    pub database: DatabaseArg,
    /// Public base URL (e.g. https://scim.example.com) used in Location headers and meta.location.
    #[arg(long, env = "SWITCHBOARD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// JWT signing secret; by default one is generated on first start and kept in the database.
    #[arg(long, env = "SWITCHBOARD_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Most levels of nested groups (a top group is level 1).
    #[arg(long, env = "SWITCHBOARD_MAX_GROUP_DEPTH", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub max_group_depth: u32,
    /// Requests per second each account may make, in bursts of twice that (0, the default: no
    /// limit). Over it: 429 with Retry-After.
    #[arg(long, env = "SWITCHBOARD_RATE_LIMIT", default_value_t = 0)]
    pub rate_limit: u32,
    /// Log format.
    #[arg(
        long,
        env = "SWITCHBOARD_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: telemetry::LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account.
    Create { name: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    SuperAdmin,
    Admin,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token; prints the token alone on stdout.
    Create {
        #[arg(long)]
        account: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Days until the token expires.
        #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
        ttl: u32,
        /// Signing secret, if the server runs with --jwt-secret.
        #[arg(long, env = "SWITCHBOARD_JWT_SECRET", hide_env_values = true)]
        jwt_secret: Option<String>,
    },
    /// List an account's tokens (id, role, created, expires, status).
    List {
        #[arg(long)]
        account: String,
    },
    /// Revoke a token by id.
    Revoke { token_id: Uuid },
}

async fn open(url: &str) -> anyhow::Result<Store> {
    let store = Store::connect(url).await?;
    store.migrate().await?;
    Ok(store)
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate { database } => {
            telemetry::init(telemetry::LogFormat::Text);
            let store = open(&database.url).await?;
            store.close().await;
            eprintln!(
                "migrations applied to {}",
                crate::config::redact_url(&database.url)
            );
            Ok(())
        }
        Command::Account {
            command: AccountCommand::Create { name },
            database,
        } => {
            let store = open(&database.url).await?;
            let account = accounts::create_account(&store, &name).await?;
            store.close().await;
            println!("{}", account.id);
            eprintln!("account {name:?} created");
            Ok(())
        }
        Command::Token { command, database } => {
            let store = open(&database.url).await?;
            let result = token(&store, command).await;
            store.close().await;
            result
        }
    }
}

async fn token(store: &Store, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            account,
            role,
            ttl,
            jwt_secret,
        } => {
            let keys = Keys::load(store, jwt_secret.as_deref()).await?;
            let role = match role {
                RoleArg::SuperAdmin => TokenRole::SuperAdmin,
                RoleArg::Admin => TokenRole::Admin,
            };
            let (token, record) = accounts::issue_token(store, &keys, &account, role, ttl).await?;
            println!("{token}");
            eprintln!(
                "token {} ({}) for account {account:?}, expires {}",
                record.id,
                role.as_str(),
                record.expires_at.map(timestamp).unwrap_or_default()
            );
        }
        TokenCommand::List { account } => {
            println!(
                "{:<36}  {:<11}  {:<27}  {:<27}  STATUS",
                "ID", "ROLE", "CREATED", "EXPIRES"
            );
            let now = crate::store::now_micros();
            for t in accounts::list_tokens(store, &account).await? {
                let status = if t.revoked_at.is_some() {
                    "revoked"
                } else if t.expires_at.is_some_and(|e| e <= now) {
                    "expired"
                } else {
                    "active"
                };
                println!(
                    "{:<36}  {:<11}  {:<27}  {:<27}  {status}",
                    t.id,
                    t.role,
                    timestamp(t.created_at),
                    t.expires_at
                        .map(timestamp)
                        .unwrap_or_else(|| "never".into())
                );
            }
        }
        TokenCommand::Revoke { token_id } => {
            accounts::revoke_token(store, token_id).await?;
            eprintln!("token {token_id} revoked");
        }
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    telemetry::init(args.log_format);
    let config = ServeConfig {
        listen: args.listen,
        database_url: args.database.url,
        public_url: args.public_url,
        jwt_secret: args.jwt_secret,
        max_group_depth: args.max_group_depth as usize,
        rate_limit: args.rate_limit,
    };
    tracing::info!(config = ?config, "starting");
    let app = Application::build(config).await?;
    let state = app.state().clone();
    let base = match &state.config.public_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => format!("http://{}", app.address()),
    };
    if let Some(token) =
        accounts::bootstrap(&state.provisioner.store, &state.provisioner.keys).await?
    {
        println!("Switchboard created account \"default\" on this empty database.");
        println!("Its super-admin token (shown once; keep it safe):");
        println!();
        println!("{token}");
        println!();
        println!("Try: curl -H \"Authorization: Bearer $TOKEN\" {base}/scim/v2/Users");
    }
    println!("SCIM base URL: {base}/scim/v2");
    tracing::info!(address = %app.address(), "listening");
    app.run(shutdown_signal()).await
}
