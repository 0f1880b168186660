//! A real browser for the console tests: Debian's Chromium, headless, driven through
//! chromedriver's WebDriver protocol with fantoccini. Calls block, so tests read as steps.
//! Downloads land in a directory of the browser's own; screenshots go under
//! `target/screenshots/` for a reviewer to look at.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};

use crate::s3::free_port;
use crate::{ChildGuard, wait_until};

/// Where screenshots are saved: `target/screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    exe.ancestors()
        .nth(3)
        .expect("tests run from target/<profile>/deps")
        .join("screenshots")
}

pub struct Browser {
    client: Option<Client>,
    runtime: tokio::runtime::Runtime,
    /// Where the browser saves downloads.
    pub downloads: tempfile::TempDir,
    _profile: tempfile::TempDir,
    _driver: ChildGuard,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("downloads", &self.downloads.path())
            .finish()
    }
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless Chromium session.
    pub fn start() -> Self {
        assert!(
            Path::new("/usr/bin/chromedriver").exists(),
            "chromedriver is missing: run scripts/setup (it installs chromium and chromium-driver)"
        );
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = ChildGuard(Some(driver));
        assert!(
            wait_until(Duration::from_secs(20), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            }),
            "chromedriver did not listen on port {port}"
        );
        let downloads = tempfile::tempdir().expect("tempdir");
        let profile = tempfile::tempdir().expect("tempdir");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,900", "--no-first-run", "--disable-background-networking",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.path(),
                    "download.prompt_for_download": false,
                    "download.directory_upgrade": true,
                },
            }),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = runtime
            .block_on(
                ClientBuilder::new(connector)
                    .capabilities(caps)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .expect("a Chromium session through chromedriver");
        Browser {
            client: Some(client),
            runtime,
            downloads,
            _profile: profile,
            _driver: driver,
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("a live session")
    }

    pub fn goto(&self, url: &str) {
        self.runtime
            .block_on(self.client().goto(url))
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// The address of the page shown.
    pub fn url(&self) -> String {
        self.runtime
            .block_on(self.client().current_url())
            .expect("current url")
            .to_string()
    }

    /// The page's HTML.
    pub fn source(&self) -> String {
        self.runtime
            .block_on(self.client().source())
            .expect("page source")
    }

    /// The visible text of the page.
    pub fn text(&self) -> String {
        self.text_of("body")
    }

    /// The visible text of the element `css` (table cells separated by spaces).
    pub fn text_of(&self, css: &str) -> String {
        self.runtime
            .block_on(async { self.find(css).await.text().await })
            .unwrap_or_else(|e| panic!("no text in {css}: {e}"))
            .replace('\t', " ")
    }

    /// Whether an element matches `css` on the page.
    pub fn has(&self, css: &str) -> bool {
        self.runtime
            .block_on(self.client().find_all(Locator::Css(css)))
            .map(|found| !found.is_empty())
            .unwrap_or(false)
    }

    async fn find(&self, css: &str) -> Element {
        match self.client().find(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => panic!("no {css} on {}: {e}", self.client_url().await),
        }
    }

    async fn client_url(&self) -> String {
        self.client()
            .current_url()
            .await
            .map_or_else(|_| "?".to_owned(), |u| u.to_string())
    }

    /// Types `text` into the field `css` (after clearing it).
    pub fn fill(&self, css: &str, text: &str) {
        self.runtime
            .block_on(async {
                let field = self.find(css).await;
                field.clear().await?;
                field.send_keys(text).await
            })
            .unwrap_or_else(|e| panic!("cannot type into {css}: {e}"));
    }

    /// Chooses `value` in the select `css`.
    pub fn select(&self, css: &str, value: &str) {
        self.runtime
            .block_on(async { self.find(css).await.select_by_value(value).await })
            .unwrap_or_else(|e| panic!("cannot choose {value} in {css}: {e}"));
    }

    /// Clicks `css` on the page (a check box, a choice): nothing is loaded.
    pub fn click(&self, css: &str) {
        self.runtime
            .block_on(async { self.find(css).await.click().await })
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    /// Clicks the link or button `css` and waits until the page it leads to has loaded.
    pub fn follow(&self, css: &str) {
        self.runtime.block_on(async {
            let old = self.find("html").await;
            self.find(css)
                .await
                .click()
                .await
                .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
            let end = std::time::Instant::now() + Duration::from_secs(30);
            // The old page's root goes stale once the new page replaces it.
            while old.tag_name().await.is_ok() {
                assert!(
                    std::time::Instant::now() < end,
                    "clicking {css} loaded no page"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            while self
                .client()
                .execute("return document.readyState", vec![])
                .await
                .ok()
                .and_then(|v| v.as_str().map(|s| s == "complete"))
                != Some(true)
            {
                assert!(
                    std::time::Instant::now() < end,
                    "the page after {css} did not load"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }

    /// The value of the session cookie `name` (WebDriver sees HttpOnly cookies too).
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.runtime
            .block_on(self.client().get_named_cookie(name))
            .ok()
            .map(|c| c.value().to_owned())
    }

    /// Saves a PNG of the page as `screenshot_dir()/<name>.png`; returns its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .runtime
            .block_on(self.client().screenshot())
            .expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
        path
    }

    /// The finished download named `name`, waiting up to `timeout` for it.
    pub fn download(&self, name: &str, timeout: Duration) -> PathBuf {
        let path = self.downloads.path().join(name);
        let partial = self.downloads.path().join(format!("{name}.crdownload"));
        assert!(
            wait_until(timeout, || path.exists() && !partial.exists()),
            "no download {name} in {}: {:?}",
            self.downloads.path().display(),
            std::fs::read_dir(self.downloads.path())
                .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
        );
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
    }
}
