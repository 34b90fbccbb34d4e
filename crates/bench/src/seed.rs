//! Seeding a realistic data set over the protocol: users, projects with memberships,
//! folders, then issues with values and comments, pipelined over several connections so a
//! 100 000-issue set takes seconds, not hours.

use super::conn::{Conn, Dialect, ReplyBytes};
use super::load::Rng;
use super::model::Model;
use std::io::{self, Write};
use std::time::Instant;
use webissued::protocol::token::write_string;

pub struct SeedConfig {
    pub addr: String,
    pub login: String,
    pub password: String,
    pub users: usize,
    pub projects: usize,
    pub folders_per_project: usize,
    pub issues: usize,
    /// Values set on each issue (beyond the defaults ADD ISSUE stores).
    pub values_per_issue: usize,
    pub comments_per_issue: usize,
    pub connections: usize,
    pub depth: usize,
}

fn cmd(prefix: &str, strings: &[&str]) -> Vec<u8> {
    let mut out = prefix.as_bytes().to_vec();
    for s in strings {
        out.push(b' ');
        write_string(&mut out, s);
    }
    out
}

/// Fails on the first `ERROR` reply, naming the command kind.
fn check(what: &str, replies: &[ReplyBytes]) -> io::Result<()> {
    match replies.iter().find(|r| r.error) {
        Some(r) => Err(io::Error::other(format!("{what}: {}", r.text()))),
        None => Ok(()),
    }
}

fn ids(what: &str, replies: &[ReplyBytes]) -> io::Result<Vec<i64>> {
    check(what, replies)?;
    replies
        .iter()
        .map(|r| {
            r.id()
                .ok_or_else(|| io::Error::other(format!("{what}: {}", r.text())))
        })
        .collect()
}

/// Seeds the server; progress goes to stderr. Returns the number of commands sent.
pub async fn seed(cfg: &SeedConfig) -> io::Result<u64> {
    let started = Instant::now();
    let mut admin = Conn::connect(&cfg.addr, Dialect::WebIssues).await?;
    admin.login(&cfg.login, &cfg.password).await?;
    let mut rng = Rng::new(42);
    let mut sent = 0u64;

    // The type: the first one that has attributes the generator can set, else a new one.
    let mut model = Model::discover(&mut admin).await?;
    let type_id = match model.settable.keys().min() {
        Some(t) => *t,
        None => {
            let t = admin.call(&cmd("ADD TYPE", &["Bench bugs"])).await?;
            let t = ids("ADD TYPE", &[t])?[0];
            let attrs = [
                cmd(
                    &format!("ADD ATTRIBUTE {t}"),
                    &[
                        "Status",
                        r#"ENUM items={"New","Open","Fixed","Closed"} default="New" required=1"#,
                    ],
                ),
                cmd(
                    &format!("ADD ATTRIBUTE {t}"),
                    &[
                        "Severity",
                        r#"ENUM items={"Low","Medium","High"} default="Medium""#,
                    ],
                ),
                cmd(
                    &format!("ADD ATTRIBUTE {t}"),
                    &["Version", "TEXT max-length=20"],
                ),
            ];
            sent += 4;
            check("ADD ATTRIBUTE", &admin.pipeline(attrs, 4).await?)?;
            model = Model::discover(&mut admin).await?;
            t
        }
    };

    let users = (1..=cfg.users).map(|i| {
        cmd(
            "ADD USER",
            &[&format!("user{i}"), &format!("Bench User {i}"), "bench"],
        )
    });
    let user_ids = ids("ADD USER", &admin.pipeline(users, 16).await?)?;
    sent += user_ids.len() as u64;
    eprintln!("seed: {} users", user_ids.len());

    let projects = (1..=cfg.projects).map(|i| cmd("ADD PROJECT", &[&format!("Project {i}")]));
    let project_ids = ids("ADD PROJECT", &admin.pipeline(projects, 16).await?)?;
    sent += project_ids.len() as u64;

    // Every user joins three projects; the first user of a project administers it.
    let mut grants = Vec::new();
    for (n, u) in user_ids.iter().enumerate() {
        for k in 0..3.min(project_ids.len()) {
            let p = project_ids[(n + k * 7) % project_ids.len()];
            grants
                .push(format!("GRANT MEMBER {u} {p} {}", if k == 0 { 2 } else { 1 }).into_bytes());
        }
    }
    sent += grants.len() as u64;
    check("GRANT MEMBER", &admin.pipeline(grants, 32).await?)?;

    let folders: Vec<Vec<u8>> = project_ids
        .iter()
        .flat_map(|p| {
            (1..=cfg.folders_per_project).map(move |f| {
                cmd(
                    &format!("ADD FOLDER {p} {type_id}"),
                    &[&format!("Folder {f}")],
                )
            })
        })
        .collect();
    let folder_ids = ids("ADD FOLDER", &admin.pipeline(folders, 32).await?)?;
    sent += folder_ids.len() as u64;
    eprintln!(
        "seed: {} projects, {} folders ({:.1} s)",
        project_ids.len(),
        folder_ids.len(),
        started.elapsed().as_secs_f64()
    );
    if folder_ids.is_empty() {
        return Ok(sent);
    }

    // Issues, spread over the folders and over the connections.
    let conns = cfg.connections.max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..conns {
        let share: Vec<i64> = (c..cfg.issues)
            .step_by(conns)
            .map(|i| folder_ids[i % folder_ids.len()])
            .collect();
        let (addr, login, password) = (cfg.addr.clone(), cfg.login.clone(), cfg.password.clone());
        let depth = cfg.depth;
        tasks.spawn(async move {
            let mut conn = Conn::connect(&addr, Dialect::WebIssues).await?;
            conn.login(&login, &password).await?;
            // Collected first: a borrowing iterator held across awaits is not Send.
            let cmds: Vec<Vec<u8>> = share
                .iter()
                .enumerate()
                .map(|(n, f)| {
                    let name = format!("Issue {c}-{n}: the page breaks when saving");
                    cmd(&format!("ADD ISSUE {f}"), &[&name])
                })
                .collect();
            let ids = ids("ADD ISSUE", &conn.pipeline(cmds, depth).await?)?;
            io::Result::Ok((conn, ids))
        });
    }
    let mut workers = Vec::new();
    let mut issue_ids = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (conn, ids) = done.map_err(io::Error::other)??;
        issue_ids.extend_from_slice(&ids);
        workers.push((conn, ids));
    }
    sent += issue_ids.len() as u64;
    eprintln!(
        "seed: {} issues ({:.1} s)",
        issue_ids.len(),
        started.elapsed().as_secs_f64()
    );

    // Values and comments: each adds a stamp and a history row, as real use does.
    let attrs = model.settable.remove(&type_id).unwrap_or_default();
    let mut tasks = tokio::task::JoinSet::new();
    for (w, (mut conn, ids)) in workers.into_iter().enumerate() {
        let mut cmds = Vec::new();
        for id in ids {
            for _ in 0..cfg.values_per_issue {
                if attrs.is_empty() {
                    break;
                }
                let a = &attrs[rng.below(attrs.len())];
                let mut line = Vec::new();
                let _ = write!(line, "SET VALUE {id} {} ", a.id);
                write_string(&mut line, &a.values[rng.below(a.values.len())]);
                cmds.push(line);
            }
            for k in 0..cfg.comments_per_issue {
                let text =
                    format!("Comment {k} on issue {id}.\nSeen by worker {w}; it's reproducible.");
                cmds.push(cmd(&format!("ADD COMMENT {id}"), &[&text]));
            }
        }
        let depth = cfg.depth;
        tasks.spawn(async move {
            let n = cmds.len() as u64;
            let replies = conn.pipeline(cmds, depth).await?;
            // SET VALUE answers NULL when the value does not change: not an error.
            check("SET VALUE / ADD COMMENT", &replies)?;
            io::Result::Ok(n)
        });
    }
    while let Some(done) = tasks.join_next().await {
        sent += done.map_err(io::Error::other)??;
    }
    let model = Model::discover(&mut admin).await?;
    eprintln!(
        "seed: done, {sent} commands in {:.1} s; server has {} folders, {} issues",
        started.elapsed().as_secs_f64(),
        model.folders.len(),
        model.issues.len()
    );
    Ok(sent)
}
