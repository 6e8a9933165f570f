//! The operator's command line. The subcommands and their output are a contract that scripts
//! depend on: `token create` prints the token alone on stdout; everything else that is not the
//! requested output goes to stderr.

use clap::{Args, Parser, Subcommand, ValueEnum};
use uuid::Uuid;

use crate::app::{Application, shutdown_signal};
use crate::config::ServeConfig;
use crate::provisioning::render::timestamp;
use crate::provisioning::tokens::Keys;
use std::sync::Arc;

use crate::provisioning::catalog::{NumbersInput, ProductInput};
use crate::provisioning::{Actor, Context, Principal, Provisioner, Settings, TokenRole, accounts};
use crate::scim::schema::Registry;
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
    /// Manage an account's licence products and their seats.
    Licence {
        #[command(subcommand)]
        command: LicenceCommand,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Manage an account's phone-number inventory.
    Numbers {
        #[command(subcommand)]
        command: NumbersCommand,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Soft-deleted users: list and restore.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
        #[command(flatten)]
        database: DatabaseArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum LicenceCommand {
    /// Create or update a product: its seats and its feature toggles.
    Set {
        #[arg(long)]
        account: String,
        #[arg(long)]
        product: String,
        #[arg(long)]
        seats: i64,
        /// A feature toggle of the product (repeatable); the list replaces the previous one.
        #[arg(long = "feature")]
        features: Vec<String>,
        /// Display name.
        #[arg(long)]
        display: Option<String>,
    },
    /// List products: code, seats, seats used, features.
    List {
        #[arg(long)]
        account: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum NumbersCommand {
    /// Add E.164 numbers to the inventory (all or none).
    Add {
        #[arg(long)]
        account: String,
        /// The numbers can send and receive SMS.
        #[arg(long)]
        sms: bool,
        #[arg(required = true)]
        numbers: Vec<String>,
    },
    /// List the inventory: number, SMS, status, user.
    List {
        #[arg(long)]
        account: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List soft-deleted users still restorable.
    Deleted {
        #[arg(long)]
        account: String,
    },
    /// Restore a soft-deleted user.
    Restore {
        #[arg(long)]
        account: String,
        id: String,
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
    /// SMTP relay for invitation mails: smtp://[USER:PASS@]HOST[:PORT] (add ?tls=required for
    /// STARTTLS) or smtps://… (TLS). Without it mails are written to --mail-dir.
    #[arg(long, env = "SWITCHBOARD_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Directory that receives one .eml file per mail when no SMTP relay is configured.
    #[arg(long, env = "SWITCHBOARD_MAIL_DIR", default_value = "data/mail")]
    pub mail_dir: std::path::PathBuf,
    /// From address of invitation mails.
    #[arg(
        long,
        env = "SWITCHBOARD_MAIL_FROM",
        default_value = "Switchboard <no-reply@switchboard.invalid>"
    )]
    pub mail_from: String,
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
        Command::Licence { command, database } => {
            let store = open(&database.url).await?;
            let result = licence(&store, command).await;
            store.close().await;
            result
        }
        Command::Numbers { command, database } => {
            let store = open(&database.url).await?;
            let result = numbers(&store, command).await;
            store.close().await;
            result
        }
        Command::Users { command, database } => {
            let store = open(&database.url).await?;
            let result = users(&store, command).await;
            store.close().await;
            result
        }
    }
}

/// The provisioning service and a super-admin context for `account`, for the subcommands that
/// manage what SCIM references. Their audit events carry the user agent `switchboard-cli` and
/// no token.
async fn operator(store: &Store, account: &str) -> anyhow::Result<(Provisioner, Context)> {
    let registry = Arc::new(Registry::load().map_err(|e| anyhow::anyhow!(e))?);
    let keys = Keys::load(store, None).await?;
    let provisioner = Provisioner::new(store.clone(), registry, keys, Settings::default());
    let mut tx = store.begin_read().await?;
    let found = tx.account_by_name(account).await?;
    tx.commit().await?;
    let found = found.ok_or_else(|| anyhow::anyhow!("no account named {account:?}"))?;
    let ctx = Context {
        principal: Principal {
            account_id: found.id,
            actor: Actor::Operator,
        },
        request_id: Some(format!("cli-{}", Uuid::now_v7())),
        user_agent: Some("switchboard-cli".into()),
        scim_base: "/scim/v2".into(),
    };
    Ok((provisioner, ctx))
}

fn explain(e: crate::provisioning::Error) -> anyhow::Error {
    match e {
        crate::provisioning::Error::Scim(e) => anyhow::anyhow!("{}", e.detail),
        other => anyhow::anyhow!(other),
    }
}

async fn licence(store: &Store, command: LicenceCommand) -> anyhow::Result<()> {
    match command {
        LicenceCommand::Set {
            account,
            product,
            seats,
            features,
            display,
        } => {
            let (provisioner, ctx) = operator(store, &account).await?;
            let input = ProductInput {
                display,
                seats,
                features,
            };
            let p = provisioner
                .put_product(&ctx, &product, input)
                .await
                .map_err(explain)?;
            eprintln!(
                "product {:?} of account {account:?}: {} seats, {} used, features [{}]",
                p.code,
                p.seats,
                p.seats_used,
                p.features.0.join(", ")
            );
        }
        LicenceCommand::List { account } => {
            let (provisioner, ctx) = operator(store, &account).await?;
            println!("{:<24}  {:>8}  {:>8}  FEATURES", "PRODUCT", "SEATS", "USED");
            for p in provisioner.products(&ctx).await.map_err(explain)? {
                println!(
                    "{:<24}  {:>8}  {:>8}  {}",
                    p.code,
                    p.seats,
                    p.seats_used,
                    p.features.0.join(",")
                );
            }
        }
    }
    Ok(())
}

async fn numbers(store: &Store, command: NumbersCommand) -> anyhow::Result<()> {
    match command {
        NumbersCommand::Add {
            account,
            sms,
            numbers,
        } => {
            let (provisioner, ctx) = operator(store, &account).await?;
            let input = NumbersInput {
                numbers,
                sms_capable: sms,
            };
            let result = provisioner
                .add_phone_numbers(&ctx, input)
                .await
                .map_err(explain)?;
            let count = |key: &str| result[key].as_array().map_or(0, Vec::len);
            eprintln!(
                "{} numbers added to account {account:?}, {} already there",
                count("added"),
                count("alreadyPresent")
            );
        }
        NumbersCommand::List { account } => {
            let (provisioner, ctx) = operator(store, &account).await?;
            println!("{:<16}  {:<5}  {:<11}  USER", "NUMBER", "SMS", "STATUS");
            for n in provisioner.phone_numbers(&ctx).await.map_err(explain)? {
                println!(
                    "{:<16}  {:<5}  {:<11}  {}",
                    n["number"].as_str().unwrap_or_default(),
                    n["smsCapable"].as_bool().unwrap_or_default(),
                    n["status"].as_str().unwrap_or_default(),
                    n["userId"].as_str().unwrap_or("-")
                );
            }
        }
    }
    Ok(())
}

async fn users(store: &Store, command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::Deleted { account } => {
            let (provisioner, ctx) = operator(store, &account).await?;
            println!(
                "{:<36}  {:<27}  {:<27}  USERNAME",
                "ID", "DELETED", "RESTORABLE UNTIL"
            );
            for u in provisioner.deleted_users(&ctx).await.map_err(explain)? {
                println!(
                    "{:<36}  {:<27}  {:<27}  {}",
                    u["id"].as_str().unwrap_or_default(),
                    u["deletedAt"].as_str().unwrap_or_default(),
                    u["restorableUntil"].as_str().unwrap_or_default(),
                    u["userName"].as_str().unwrap_or_default()
                );
            }
        }
        UsersCommand::Restore { account, id } => {
            let (provisioner, ctx) = operator(store, &account).await?;
            let user = provisioner.restore_user(&ctx, &id).await.map_err(explain)?;
            eprintln!(
                "user {id} ({}) restored",
                user.resource["userName"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(())
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
        mail: crate::config::MailConfig {
            smtp_url: args.smtp_url,
            mail_dir: args.mail_dir,
            from: args.mail_from,
            ..Default::default()
        },
    };
    tracing::info!(config = ?config, "starting");
    let app = Application::build(config).await?;
    let state = app.state().clone();
    let base = match &state.config.public_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => format!("http://{}", app.address()),
    };
    if let Some(token) =
        accounts::bootstrap(state.provisioner.store(), state.provisioner.keys()).await?
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
