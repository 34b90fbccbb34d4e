//! Mail bodies rendered with minijinja from templates compiled into the binary, each
//! replaceable by a file of the same name in an override directory.
//!
//! All templates are loaded and compiled in [`Templates::new`], so a broken override stops
//! the server at startup instead of failing the first digest hours later. Autoescaping
//! follows the file extension: `.html` templates escape every value, `.txt` ones do not.
//! Undefined variables are errors, so a typo in an override is caught by the first render.

use std::fmt;
use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

/// Template names with their compiled-in defaults; these are also the override file names.
const DEFAULTS: [(&str, &str); 6] = [
    ("digest.txt", include_str!("../../templates/digest.txt")),
    ("digest.html", include_str!("../../templates/digest.html")),
    ("report.txt", include_str!("../../templates/report.txt")),
    ("report.html", include_str!("../../templates/report.html")),
    ("confirm.txt", include_str!("../../templates/confirm.txt")),
    ("confirm.html", include_str!("../../templates/confirm.html")),
];

/// One user's digest: what changed, grouped project → folder → issue.
#[derive(Serialize, Clone, Debug, Default)]
pub struct DigestView {
    pub server_name: String,
    pub recipient_name: String,
    pub projects: Vec<ProjectView>,
    /// Shown at the bottom when the digest goes to a subscription that can be cancelled.
    pub unsubscribe_url: Option<String>,
    /// E.g. "Change how often you get these mails in the client's preferences."
    pub settings_hint: Option<String>,
    /// Footer lines after the hint: why the mail came and the exact commands that change
    /// or stop it.
    pub footer: Vec<String>,
}

#[derive(Serialize, Clone, Debug, Default)]
pub struct ProjectView {
    pub name: String,
    pub folders: Vec<FolderView>,
}

#[derive(Serialize, Clone, Debug, Default)]
pub struct FolderView {
    pub name: String,
    pub issues: Vec<IssueView>,
}

#[derive(Serialize, Clone, Debug, Default)]
pub struct IssueView {
    pub id: u64,
    pub name: String,
    pub url: Option<String>,
    pub changes: Vec<ChangeView>,
}

/// One change, already formatted by the caller (`when` in the recipient's time zone).
#[derive(Serialize, Clone, Debug, Default)]
pub struct ChangeView {
    pub who: String,
    pub when: String,
    /// "created", "renamed from X", "Severity: Low → High", "comment added", …
    pub what: String,
    /// Lines shown under the change: a comment's text, trimmed.
    pub detail: Vec<String>,
}

/// A 1.1 summary report: every issue of an alert's folder (or type) that its view shows,
/// in the view's order, with the view's columns (src/notify/report.rs).
#[derive(Serialize, Clone, Debug, Default)]
pub struct ReportView {
    pub server_name: String,
    pub recipient_name: String,
    /// "Website / Bugs" or the type's name for a global alert.
    pub place: String,
    pub view_name: String,
    /// The slot's local time in the recipient's zone.
    pub when: String,
    /// Headers of the columns after ID and Name.
    pub columns: Vec<String>,
    pub issues: Vec<ReportIssueView>,
    /// Issues matching the view beyond those listed.
    pub more: usize,
    pub unsubscribe_url: Option<String>,
    pub footer: Vec<String>,
}

#[derive(Serialize, Clone, Debug, Default)]
pub struct ReportIssueView {
    pub id: u64,
    pub name: String,
    /// One value per entry of [`ReportView::columns`].
    pub cells: Vec<String>,
}

/// A double opt-in request for a subscription.
#[derive(Serialize, Clone, Debug, Default)]
pub struct ConfirmView {
    pub server_name: String,
    /// What is subscribed, e.g. "folder Bugs in project Website".
    pub target: String,
    pub token: String,
    pub confirm_url: String,
    /// When the request lapses, formatted by the caller.
    pub expires: String,
}

/// Loading or rendering a template failed.
#[derive(Debug)]
pub enum TemplateError {
    /// The override directory or a file in it could not be read.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A template did not compile or did not render.
    Template(minijinja::Error),
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::Io { path, source } => {
                write!(f, "cannot read template {}: {source}", path.display())
            }
            TemplateError::Template(e) => write!(f, "template error: {e:#}"),
        }
    }
}

impl std::error::Error for TemplateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TemplateError::Io { source, .. } => Some(source),
            TemplateError::Template(e) => Some(e),
        }
    }
}

impl From<minijinja::Error> for TemplateError {
    fn from(e: minijinja::Error) -> Self {
        TemplateError::Template(e)
    }
}

/// The compiled mail templates.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Compiles the defaults, replacing each with `override_dir/<name>` where that file
    /// exists. A given `override_dir` that cannot be read is an error, not a silent fallback.
    pub fn new(override_dir: Option<&Path>) -> Result<Self, TemplateError> {
        if let Some(dir) = override_dir {
            std::fs::read_dir(dir).map_err(|source| TemplateError::Io {
                path: dir.to_owned(),
                source,
            })?;
        }
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Block tags on their own lines leave no blank lines behind, which keeps the plain
        // text templates readable; a final newline is kept so text bodies end with one.
        env.set_syntax(
            SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .keep_trailing_newline(true)
                .build()?,
        );
        for (name, default) in DEFAULTS {
            let source = match override_dir.map(|dir| dir.join(name)) {
                Some(path) if path.exists() => std::fs::read_to_string(&path)
                    .map_err(|source| TemplateError::Io { path, source })?,
                _ => default.to_owned(),
            };
            env.add_template_owned(name, source)?;
        }
        Ok(Self { env })
    }

    fn render_pair(&self, base: &str, view: Value) -> Result<(String, String), TemplateError> {
        let text = self
            .env
            .get_template(&format!("{base}.txt"))?
            .render(view.clone())?;
        let html = self
            .env
            .get_template(&format!("{base}.html"))?
            .render(view.clone())?;
        Ok((text, html))
    }

    /// Renders a digest as `(text, html)`.
    pub fn render_digest(&self, view: &DigestView) -> Result<(String, String), TemplateError> {
        self.render_pair("digest", Value::from(Serde(view)))
    }

    /// Renders a summary report as `(text, html)`.
    pub fn render_report(&self, view: &ReportView) -> Result<(String, String), TemplateError> {
        self.render_pair("report", Value::from(Serde(view)))
    }

    /// Renders a subscription confirmation request as `(text, html)`.
    pub fn render_confirm(&self, view: &ConfirmView) -> Result<(String, String), TemplateError> {
        self.render_pair("confirm", Value::from(Serde(view)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> DigestView {
        DigestView {
            server_name: "Tracker & Co".into(),
            recipient_name: "Zoë".into(),
            projects: vec![ProjectView {
                name: "Website".into(),
                folders: vec![
                    FolderView {
                        name: "Bugs".into(),
                        issues: vec![
                            IssueView {
                                id: 42,
                                name: "Crash on <script>alert(1)</script>".into(),
                                url: Some("https://t.example/issue/42?a=1&b=2".into()),
                                changes: vec![
                                    ChangeView {
                                        who: "Ann".into(),
                                        when: "2026-11-23 14:05".into(),
                                        what: "created".into(),
                                        detail: Vec::new(),
                                    },
                                    ChangeView {
                                        who: "Bob".into(),
                                        when: "2026-11-23 15:10".into(),
                                        what: "Severity: Low → High".into(),
                                        detail: Vec::new(),
                                    },
                                ],
                            },
                            IssueView {
                                id: 43,
                                name: "Slow login".into(),
                                url: None,
                                changes: vec![ChangeView {
                                    who: "Ann".into(),
                                    when: "2026-11-23 16:00".into(),
                                    what: "attachment trace.png added".into(),
                                    detail: Vec::new(),
                                }],
                            },
                        ],
                    },
                    FolderView {
                        name: "Tasks".into(),
                        issues: vec![IssueView {
                            id: 7,
                            name: "Renew certificate".into(),
                            url: None,
                            changes: vec![ChangeView {
                                who: "Cy".into(),
                                when: "2026-11-22 09:00".into(),
                                what: "renamed from Renew cert".into(),
                                detail: Vec::new(),
                            }],
                        }],
                    },
                ],
            }],
            unsubscribe_url: Some("https://t.example/u?t=XYZ".into()),
            footer: Vec::new(),
            settings_hint: None,
        }
    }

    #[test]
    fn digest_text_lists_projects_folders_issues_and_changes() {
        let (text, _) = Templates::new(None)
            .unwrap()
            .render_digest(&digest())
            .unwrap();
        let expected = "\
Hello Zoë,

this is what changed on Tracker & Co:

== Website / Bugs ==

#42 Crash on <script>alert(1)</script>
https://t.example/issue/42?a=1&b=2
  * 2026-11-23 14:05, Ann: created
  * 2026-11-23 15:10, Bob: Severity: Low → High

#43 Slow login
  * 2026-11-23 16:00, Ann: attachment trace.png added

== Website / Tasks ==

#7 Renew certificate
  * 2026-11-22 09:00, Cy: renamed from Renew cert

-- 
To stop these mails, open: https://t.example/u?t=XYZ
";
        assert_eq!(text, expected);
    }

    #[test]
    fn digest_html_escapes_user_text() {
        let (_, html) = Templates::new(None)
            .unwrap()
            .render_digest(&digest())
            .unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("Crash on &lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{html}"
        );
        assert!(html.contains("Tracker &amp; Co"));
        assert!(
            html.contains("href=\"https:&#x2f;&#x2f;t.example&#x2f;issue&#x2f;42?a=1&amp;b=2\"")
        );
        assert!(html.contains("<li>2026-11-23 15:10, Bob: Severity: Low → High</li>"));
        assert!(html.contains("Stop these mails"));
    }

    #[test]
    fn digest_footer_follows_the_options() {
        let t = Templates::new(None).unwrap();
        let mut view = digest();
        view.unsubscribe_url = None;
        let (text, html) = t.render_digest(&view).unwrap();
        assert!(!text.contains("-- \n"), "{text}");
        assert!(!text.contains("stop these"));
        assert!(!html.contains("Stop these mails"));

        view.settings_hint = Some("Change the frequency in your preferences.".into());
        let (text, html) = t.render_digest(&view).unwrap();
        assert!(
            text.ends_with("-- \nChange the frequency in your preferences.\n"),
            "{text}"
        );
        assert!(html.contains("Change the frequency in your preferences."));
    }

    #[test]
    fn confirm_mentions_target_token_link_expiry_and_ignore_hint() {
        let view = ConfirmView {
            server_name: "Tracker".into(),
            target: "folder Bugs in project Website".into(),
            token: "tok_0123456789abcdef".into(),
            confirm_url: "https://t.example/confirm?t=tok_0123456789abcdef".into(),
            expires: "2026-11-24 12:00 UTC".into(),
        };
        let (text, html) = Templates::new(None).unwrap().render_confirm(&view).unwrap();
        for part in [
            "folder Bugs in project Website",
            "tok_0123456789abcdef",
            "https://t.example/confirm?t=tok_0123456789abcdef",
            "expires 2026-11-24 12:00 UTC",
            "ignore this mail",
        ] {
            assert!(text.contains(part), "text lacks {part:?}:\n{text}");
        }
        assert!(text.ends_with('\n'));
        assert!(html.contains("<b>folder Bugs in project Website</b>"));
        assert!(html.contains("<code>tok_0123456789abcdef</code>"));
        assert!(
            html.contains(
                "href=\"https:&#x2f;&#x2f;t.example&#x2f;confirm?t=tok_0123456789abcdef\""
            )
        );
        assert!(html.contains("ignore this mail"));
    }

    #[test]
    fn override_dir_replaces_only_the_files_it_has() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("digest.txt"),
            "Hi {{ recipient_name }}, {{ projects | length }} project(s).\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("digest.html"),
            "<p>{{ recipient_name }}</p>",
        )
        .unwrap();
        let t = Templates::new(Some(dir.path())).unwrap();
        let mut view = digest();
        view.recipient_name = "<b>Zoë</b>".into();
        let (text, html) = t.render_digest(&view).unwrap();
        assert_eq!(text, "Hi <b>Zoë</b>, 1 project(s).\n");
        // Overrides keep the extension, so they keep autoescaping.
        assert_eq!(html, "<p>&lt;b&gt;Zoë&lt;&#x2f;b&gt;</p>");
        let (text, _) = t
            .render_confirm(&ConfirmView {
                token: "T".into(),
                ..ConfirmView::default()
            })
            .unwrap();
        assert!(
            text.contains("give the server this token: T"),
            "default kept: {text}"
        );
    }

    #[test]
    fn broken_overrides_fail_early() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("confirm.txt"), "{% if token %}unclosed").unwrap();
        let err = Templates::new(Some(dir.path())).unwrap_err();
        assert!(err.to_string().contains("confirm.txt"), "{err}");

        std::fs::write(dir.path().join("confirm.txt"), "{{ tokn }}").unwrap();
        let t = Templates::new(Some(dir.path())).unwrap();
        let err = t.render_confirm(&ConfirmView::default()).unwrap_err();
        assert!(err.to_string().contains("undefined"), "{err}");

        let missing = dir.path().join("nope");
        let err = Templates::new(Some(&missing)).unwrap_err();
        assert!(matches!(err, TemplateError::Io { .. }), "{err}");
    }
}
