//! The web console in a real browser (issue 13): Debian's Chromium, headless, driven through
//! ChromeDriver's WebDriver API, walks the seeds' story against the real `ambient dev` binary.
//!
//! Sign in as the admin, create a VM and turn its system identity on, create a user-assigned
//! identity and add it to a web app, grant the VM Key Vault Secrets User on a vault, find both
//! identities under Enterprise applications filtered to managed identities, use Check access,
//! reveal a secret, see each action in the activity log, and see the faults injected on the
//! VM and on its host on the hosts page and the VM's page. Every page is saved as a PNG
//! (the directory is printed), the browser's console must stay free of errors, and the session
//! cookie must be out of reach of scripts. The test fails, never skips, without Chromium.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::{Ambient, cli_json, tempdir};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// A script listing the page's form controls that have no label.
const UNLABELLED: &str = "return [...document.querySelectorAll('input, select, textarea')]
    .filter(c => !['hidden', 'submit', 'button'].includes(c.type))
    .filter(c => c.labels.length === 0 && !c.getAttribute('aria-label'))
    .map(c => c.outerHTML.slice(0, 120));";
const SECRETS_USER: &str = "4633458b-17de-408a-b874-0445c86b69e6";
const SECRETS_OFFICER: &str = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7";

/// A headless Chromium behind its ChromeDriver; both stop on drop.
struct Browser {
    driver: Child,
    http: reqwest::Client,
    /// `http://127.0.0.1:{port}/session/{id}`.
    session: String,
    shots: PathBuf,
    shot_count: usize,
    /// Chromium's fresh profile directory, removed on drop.
    profile: PathBuf,
    /// Browser console errors seen so far, with the step they appeared at.
    errors: Vec<String>,
}

fn find_program(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/lib/chromium")])
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is missing: install Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)")
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"))
}

impl Browser {
    async fn start(shots: &Path) -> Browser {
        let chromium = find_program("chromium");
        let chromedriver = find_program("chromedriver");
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http.get(format!("{base}/status")).send().await.ok();
            if let Some(response) = ready
                && response
                    .json::<Value>()
                    .await
                    .is_ok_and(|status| status["value"]["ready"] == true)
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempdir("chromium-profile");
        let mut args = vec![
            "--headless".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-crash-reporter".to_owned(),
            "--disable-breakpad".to_owned(),
            // Anything but loopback goes to a closed port: the test reaches no network.
            "--proxy-server=http://127.0.0.1:9".to_owned(),
            "--window-size=1280,900".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        if running_as_root() {
            args.push("--no-sandbox".to_owned());
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            // The server's certificate comes from the deployment's own CA, which this fresh
            // profile does not trust; TLS itself is tested elsewhere.
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {"binary": chromium, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_owned();
        std::fs::create_dir_all(shots).unwrap();
        Browser {
            driver,
            http,
            session: format!("{base}/session/{id}"),
            shots: shots.to_owned(),
            shot_count: 0,
            profile,
            errors: Vec::new(),
        }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        } else if method == reqwest::Method::POST {
            request = request.json(&json!({}));
        }
        let response: Value = request.send().await.unwrap().json().await.unwrap();
        if let Some(error) = response["value"]["error"].as_str() {
            panic!("WebDriver {method} {path}: {error}: {}", response["value"]["message"]);
        }
        response["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    async fn current_url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", None).await.as_str().unwrap().to_owned()
    }

    async fn source(&self) -> String {
        self.command(reqwest::Method::GET, "/source", None).await.as_str().unwrap().to_owned()
    }

    /// The element `css` matches, waiting up to 10 s for it to appear.
    async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let response: Value = self
                .http
                .post(format!("{}/element", self.session))
                .json(&json!({"using": "css selector", "value": css}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if let Some(id) = response["value"][ELEMENT].as_str() {
                return id.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no element matches {css} on {}",
                self.current_url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.command(reqwest::Method::POST, &format!("/element/{element}/click"), None).await;
    }

    /// Clicks something that loads a new page (a link, a submit button) and waits for the new
    /// document: WebDriver's click does not wait for the navigation it starts.
    async fn follow(&self, css: &str) {
        let before = self.find("html").await;
        self.click(css).await;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let now = self.find("html").await;
            let ready = self
                .command(
                    reqwest::Method::POST,
                    "/execute/sync",
                    Some(json!({"script": "return document.readyState", "args": []})),
                )
                .await;
            if now != before && ready == "complete" {
                return;
            }
            assert!(Instant::now() < deadline, "clicking {css} loaded no new page");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.command(reqwest::Method::POST, &format!("/element/{element}/clear"), None).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn attribute(&self, css: &str, name: &str) -> String {
        let element = self.find(css).await;
        self.command(reqwest::Method::GET, &format!("/element/{element}/attribute/{name}"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.command(reqwest::Method::GET, &format!("/element/{element}/text"), None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Asserts the page holds `needle` (in its HTML).
    async fn expect(&self, needle: &str) {
        // Polled: a page may still be replacing the previous one.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.source().await.contains(needle) {
            if Instant::now() > deadline {
                let shown = self.text("body").await;
                panic!("{} lacks {needle:?}; it shows:\n{shown}", self.current_url().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a screenshot named after the step and collects the console errors so far.
    async fn snap(&mut self, name: &str) {
        self.shot_count += 1;
        let png = self.command(reqwest::Method::GET, "/screenshot", None).await;
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        let path = self.shots.join(format!("{:02}-{name}.png", self.shot_count));
        std::fs::write(&path, bytes).unwrap();
        let log =
            self.command(reqwest::Method::POST, "/se/log", Some(json!({"type": "browser"}))).await;
        for entry in log.as_array().into_iter().flatten() {
            if entry["level"] == "SEVERE" {
                self.errors.push(format!("{name}: {}", entry["message"]));
            }
        }
        // Every form control has a label a screen reader can announce.
        let unlabelled = self
            .command(
                reqwest::Method::POST,
                "/execute/sync",
                Some(json!({"script": UNLABELLED, "args": []})),
            )
            .await;
        assert_eq!(unlabelled, json!([]), "{name}: form controls without a label");
    }

    async fn resize(&self, width: u32, height: u32) {
        self.command(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session makes ChromeDriver close Chromium; killing the driver alone would
        // leave the browser running.
        if let Err(error) = delete_session(&self.session) {
            eprintln!("could not end the WebDriver session: {error}");
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// `DELETE {session}` with a plain blocking HTTP/1.1 request (drop cannot await), waiting for
/// the answer, which comes once the browser is gone.
fn delete_session(session: &str) -> std::io::Result<()> {
    use std::io::{Read as _, Write as _};
    let rest = session.strip_prefix("http://").unwrap_or(session);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = std::net::TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        stream,
        "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )?;
    // Read the head and as much body as it announces (the driver may keep the connection).
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            return Ok(());
        }
        answer.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                return Ok(());
            }
        }
    }
}

/// Creates a resource from the All resources page's form and lands on its overview.
async fn create(browser: &Browser, base: &str, kind: &str, group: &str, name: &str) {
    browser.open(&format!("{base}/console/resources")).await;
    browser.click(&format!("#c-kind option[value='{kind}']")).await;
    browser.click(&format!("#c-group option[value='{group}']")).await;
    browser.type_into("#c-name", name).await;
    browser.follow("form[action='/console/resources/create'] button[type=submit]").await;
    browser.expect("Created.").await;
    browser.expect(&format!("<h1>{name}</h1>")).await;
}

#[tokio::test]
async fn console_walks_the_seeds_story_in_a_real_browser() {
    let started = Instant::now();
    let dir = tempdir("console");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let base = ambient.url().to_owned();
    let admin: Value =
        serde_json::from_slice(&std::fs::read(dir.join("admin.json")).unwrap()).unwrap();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let mut browser = Browser::start(&shots).await;
    println!("console screenshots: {}", shots.display());

    // Sign in: a page of the console sends us to the sign-in form and back.
    browser.open(&format!("{base}/console/resources")).await;
    assert!(browser.current_url().await.contains("/console/signin?next="));
    browser.snap("sign-in").await;
    browser.type_into("#client_id", admin["appId"].as_str().unwrap()).await;
    browser.type_into("#client_secret", admin["password"].as_str().unwrap()).await;
    browser.follow("main form button[type=submit]").await;
    if !browser.current_url().await.ends_with("/console/resources") {
        browser.snap("sign-in-failed").await;
        panic!("sign-in failed: {}", browser.text("main").await);
    }
    let cookies = browser
        .command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": "return document.cookie", "args": []})),
        )
        .await;
    assert_eq!(cookies, json!(""), "the session cookie must be out of reach of scripts");
    let admin_object_id =
        browser.attribute(".who-name", "title").await.trim_start_matches("Object id ").to_owned();

    browser.open(&format!("{base}/console/")).await;
    browser.expect("Tokens issued, last hour").await;
    browser.expect("Signing keys").await;
    browser.snap("overview").await;

    // A resource group, then a VM with its system-assigned identity turned on.
    browser.open(&format!("{base}/console/groups")).await;
    browser.type_into("#group-name", "rg-console").await;
    browser.follow("form[action='/console/groups/create'] button[type=submit]").await;
    browser.expect("rg-console").await;
    browser.snap("groups").await;
    create(&browser, &base, "vm", "rg-console", "vm-console").await;
    browser.snap("vm-created").await;
    browser.follow("nav.tabs a[href^='/console/resource/identity']").await;
    browser.click("input[name=status][value=on]").await;
    browser.follow("form[action='/console/resource/identity/system'] button[type=submit]").await;
    browser.expect("will be registered with the directory").await;
    browser.snap("vm-identity-confirm").await;
    browser.follow("form[action='/console/resource/identity/system'] button[type=submit]").await;
    browser.expect("Saved.").await;
    let vm_principal = browser.text("dl.facts code").await;
    assert_eq!(vm_principal.len(), 36, "{vm_principal}");
    browser.snap("vm-identity-on").await;

    // A user-assigned identity added to a web app.
    create(&browser, &base, "identity", "rg-console", "id-web").await;
    browser.snap("identity-created").await;
    create(&browser, &base, "webapp", "rg-console", "web-console").await;
    browser.follow("nav.tabs a[href^='/console/resource/identity']").await;
    browser.follow("a[href*='tab=user']").await;
    browser.click("#add-identity option").await;
    browser.follow("form[action='/console/resource/identity/user/add'] button[type=submit]").await;
    browser.expect("Added.").await;
    assert!(browser.text("#user-identities").await.contains("id-web"));
    browser.snap("webapp-user-identity").await;

    // A vault; the VM gets Key Vault Secrets User on it, the admin Secrets Officer.
    let vault = format!("kvconsole{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    create(&browser, &base, "vault", "rg-console", &vault).await;
    browser.follow("nav.tabs a[href^='/console/iam']").await;
    for (role, principal) in
        [(SECRETS_USER, vm_principal.as_str()), (SECRETS_OFFICER, admin_object_id.as_str())]
    {
        browser.click(&format!("input[name=role][value$='{role}']")).await;
        browser.click(&format!("#assignee option[value='{principal}']")).await;
        browser.follow("form[action='/console/iam/assign'] button[type=submit]").await;
        browser.expect("The role assignment was added.").await;
    }
    let assignments = browser.text("#assignments").await;
    assert!(assignments.contains("Key Vault Secrets User"), "{assignments}");
    assert!(assignments.contains("vm-console"), "{assignments}");
    browser.snap("vault-iam").await;
    browser
        .command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": "document.getElementById('add').scrollIntoView()", "args": []})),
        )
        .await;
    browser.snap("vault-iam-add-role-assignment").await;

    // Both managed identities under Enterprise applications, filtered by application type.
    browser.open(&format!("{base}/console/apps")).await;
    // Choosing the type sends the form at once (console.js); without script, Apply does.
    browser.follow("#a-type option[value=managed]").await;
    assert!(browser.current_url().await.contains("type=managed"));
    let apps = browser.text("#apps").await;
    assert!(apps.contains("vm-console") && apps.contains("id-web"), "{apps}");
    assert!(!apps.contains("ambient-admin"), "applications must be filtered out: {apps}");
    browser.snap("enterprise-apps-managed").await;

    // Check access: the VM may read secrets in the vault, and why.
    browser.open(&format!("{base}/console/resources?type=vault")).await;
    browser.follow(&format!("a[href*='{vault}']")).await;
    browser.follow("nav.tabs a[href^='/console/iam']").await;
    browser.click(&format!("#check-principal option[value='{vm_principal}']")).await;
    browser.follow("form[action='/console/iam/check'] button[type=submit]").await;
    let decisions = browser.text("#decisions").await;
    let get_secret = decisions
        .lines()
        .find(|line| line.contains("secrets/getSecret/action"))
        .unwrap_or_else(|| panic!("{decisions}"));
    assert!(get_secret.contains("Allowed by Key Vault Secrets User"), "{get_secret}");
    assert!(
        decisions.lines().any(|line| line.contains("vaults/write") && line.contains("Denied")),
        "{decisions}"
    );
    browser.snap("check-access").await;

    // A secret, set and revealed on request only.
    browser.follow("nav.tabs a[href^='/console/vault']").await;
    browser.click("details summary").await;
    browser.type_into("#s-name", "db-password").await;
    browser.type_into("#s-value", "correct-horse-battery").await;
    browser.follow("form[action='/console/vault/secret/set'] button[type=submit]").await;
    browser.expect("The secret was saved as a new version.").await;
    browser.snap("vault-secrets").await;
    browser.follow("#secrets a").await;
    assert!(!browser.source().await.contains("correct-horse-battery"), "a value before Reveal");
    browser.snap("secret-versions").await;
    browser.follow("form[action='/console/vault/reveal'] button[type=submit]").await;
    assert_eq!(browser.text("#secret-value").await, "correct-horse-battery");
    browser.snap("secret-revealed").await;

    // Every action in the activity log, newest first, with a detail view.
    browser.open(&format!("{base}/console/activity")).await;
    let activity = browser.text("#activity").await;
    for operation in [
        "Microsoft.Resources/subscriptions/resourceGroups/write",
        "Microsoft.Compute/virtualMachines/write",
        "Microsoft.ManagedIdentity/userAssignedIdentities/write",
        "Microsoft.Web/sites/write",
        "Microsoft.KeyVault/vaults/write",
        "Microsoft.Authorization/roleAssignments/write",
    ] {
        assert!(activity.contains(operation), "activity log lacks {operation}: {activity}");
    }
    browser.snap("activity-log").await;
    browser.type_into("#l-operation", "roleAssignments").await;
    browser.follow("form[action='/console/activity'] button[type=submit]").await;
    let filtered = browser.text("#activity").await;
    assert!(!filtered.contains("virtualMachines/write"), "{filtered}");
    browser.follow("#activity tbody a").await;
    browser.expect("Microsoft.Authorization/roleAssignments/write").await;
    browser.snap("activity-event").await;

    // The token inspector, with the admin's own management token.
    let answer: Value = ambient
        .client()
        .post(format!("{base}/{}/oauth2/v2.0/token", ambient.var("AMBIENT_TENANT_ID")))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", admin["appId"].as_str().unwrap()),
            ("client_secret", admin["password"].as_str().unwrap()),
            ("scope", "https://management.azure.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = answer["access_token"].as_str().unwrap();
    browser.open(&format!("{base}/console/inspector")).await;
    browser.type_into("#token", token).await;
    browser.follow("form[action='/console/inspector'] button[type=submit]").await;
    browser.expect("This token is valid here now.").await;
    let checks = browser.text("#checks").await;
    assert!(checks.contains("Signature Pass RS256, signed by published key"), "{checks}");
    assert!(browser.text("main").await.contains("Owner"), "the admin's roles are listed");
    browser.snap("token-inspected").await;

    // Faults injected on the VM's host and on the VM itself (issue 14) show where the console
    // shows hosts and resources.
    let hosts = cli_json(&ambient, &["host", "list"]);
    let host = hosts[0]["name"].as_str().unwrap().to_owned();
    let vm_id = crate::control_plane::Arm::admin(&ambient).await.vm("rg-console", "vm-console");
    cli_json(&ambient, &["host", "fault", "set", "--name", &host, "--latency-ms", "250"]);
    cli_json(
        &ambient,
        &[
            "host",
            "fault",
            "set",
            "--resource",
            &vm_id,
            "--error",
            "429:30",
            "--retry-after",
            "1",
            "--token-lifetime",
            "60",
        ],
    );
    browser.open(&format!("{base}/console/hosts")).await;
    let row = browser.text("#hosts tbody").await;
    assert!(row.contains("latency 250 ms"), "the host's faults: {row}");
    assert!(row.contains("30 % 429, Retry-After 1 s, tokens live 60 s"), "the VM's faults: {row}");
    browser.snap("hosts-faults").await;
    browser.open(&format!("{base}/console/resource?id={}", crate::agent::urlencode(&vm_id))).await;
    let faults = browser.text("#faults").await;
    assert_eq!(faults, "30 % 429, Retry-After 1 s, tokens live 60 s");
    browser.snap("vm-faults").await;

    // The other pages render without errors.
    for (path, needle, name) in [
        ("/console/signins", "id=\"signins\"", "sign-in-logs"),
        ("/console/identities", "Federated credentials", "managed-identities"),
        ("/console/roles", "Key Vault Secrets User", "role-definitions"),
        ("/console/hosts", "Create join token", "hosts"),
        ("/console/inspector", "Paste an access token", "token-inspector"),
    ] {
        browser.open(&format!("{base}{path}")).await;
        browser.expect(needle).await;
        browser.snap(name).await;
    }
    browser.open(&format!("{base}/console/signins")).await;
    browser.follow("#signins tbody a").await;
    browser.expect("Service principal id").await;
    browser.snap("sign-in-detail").await;

    // Phone width: the navigation folds above the content.
    browser.resize(390, 844).await;
    browser.open(&format!("{base}/console/")).await;
    browser.snap("overview-phone").await;
    browser.open(&format!("{base}/console/activity")).await;
    browser.snap("activity-phone").await;
    browser.resize(1280, 900).await;

    // Sign out: the session is gone.
    browser.follow("form[action='/console/signout'] button[type=submit]").await;
    browser.expect("You are signed out.").await;
    browser.open(&format!("{base}/console/")).await;
    assert!(browser.current_url().await.contains("/console/signin"));
    browser.snap("signed-out").await;

    // A service principal with a certificate signs in with the file, and the server's RBAC
    // shows through: it holds no role, so it sees no subscription and no directory.
    let client = ambient.client();
    // The directory accepts Graph tokens only (issue 17).
    let graph: Value = client
        .post(format!("{base}/{}/oauth2/v2.0/token", ambient.var("AMBIENT_TENANT_ID")))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", admin["appId"].as_str().unwrap()),
            ("client_secret", admin["password"].as_str().unwrap()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin_token = graph["access_token"].as_str().unwrap();
    let created: Value = client
        .post(format!("{base}/v1.0/servicePrincipals"))
        .bearer_auth(admin_token)
        .json(&json!({"displayName": "console-cert-sp"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app_id = created["appId"].as_str().unwrap();
    let certificate: Value = client
        .post(format!("{base}/v1.0/servicePrincipals/{app_id}/ambient.createCertificate"))
        .bearer_auth(admin_token)
        .json(&json!({"validityDays": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pem_path = dir.join("console-cert-sp.pem");
    std::fs::write(
        &pem_path,
        format!(
            "{}{}",
            certificate["certificatePem"].as_str().unwrap(),
            certificate["privateKeyPem"].as_str().unwrap()
        ),
    )
    .unwrap();
    browser.type_into("#client_id", app_id).await;
    let file_input = browser.find("#certificate").await;
    browser
        .command(
            reqwest::Method::POST,
            &format!("/element/{file_input}/value"),
            Some(json!({"text": pem_path.display().to_string()})),
        )
        .await;
    browser.follow("main form button[type=submit]").await;
    // It may not read the directory, so the console names it by its app id.
    assert_eq!(browser.text(".who-name").await, app_id);
    browser.expect("none visible to you").await;
    browser.expect("You do not have access to this.").await;
    browser.snap("certificate-sign-in").await;

    assert!(browser.errors.is_empty(), "browser console errors: {:#?}", browser.errors);
    // The error check itself works: an error logged now is seen.
    browser
        .command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": "console.error('probe of the error check')", "args": []})),
        )
        .await;
    browser.snap("probe").await;
    assert_eq!(browser.errors.len(), 1, "{:?}", browser.errors);
    assert!(browser.errors[0].contains("probe of the error check"), "{:?}", browser.errors);
    println!("console story took {:?}", started.elapsed());
}
