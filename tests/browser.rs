//! Real-browser tests of the bidder page (src/api/pages.rs, src/api/assets/bidder/).
//!
//! Each test starts a real cluster of three voters on loopback, each node with an events
//! listener (so the pages read their streams from another origin, as they do in the
//! local cluster), registers two bidders and an auction, and runs one scenario script of `tests/browser/` with Node.js: the script
//! drives Debian's headless Chromium (`/usr/bin/chromium`) through playwright-core, signs
//! both bidders in through the page's form and checks what the pages show.
//! - `two_bidders_see_each_others_bids_within_a_second` (outbid.mjs)
//! - `the_countdown_agrees_with_the_server_clock_within_200_ms` (countdown.mjs)
//! - `the_page_keeps_bidding_after_its_node_is_killed` (failover.mjs): this side SIGKILLs
//!   the node the page is connected to when the script asks for it.
//! - `a_sale_with_a_deposit_shows_each_bidder_their_standing_and_the_winner_confirms`
//!   (sale.mjs): a sale with a deposit and a winner's confirmation window; only one bidder
//!   has paid and is qualified, the operator records the other's deposit on the
//!   dashboard, and the winner confirms the sale on the page.
//! - `a_proxy_answers_on_the_page_and_a_sealed_quote_is_submitted_from_it` (pastcap.mjs):
//!   a proxy maximum set on the page answers a rival's bid, and a sealed quote is
//!   submitted from the page once the price reaches the cap.
//! - `secondary_bidding_and_signed_bids_run_from_the_page` (rules11.mjs): a sale past its
//!   cap in secondary bidding, bid on from both pages with the quantity's unit shown, and
//!   a sale that takes signed bids only, signed in the browser with each bidder's own
//!   Ed25519 key (a PEM, a seed, a pasted signature); the dashboard shows both.
//! - `the_hall_screen_follows_every_live_sale_at_1920x1080` (hall.mjs): the bidding-hall
//!   screen in a Chinese browser: two sales, Chinese phase names and 万元, countdowns on
//!   the server clock, a bid from a bidder's page, an operator's suspension announced, no
//!   identities, English on request; its screenshot is the README's.
//! - `a_page_shows_the_newest_100_bids_and_reads_earlier_ones_when_asked` (history.mjs):
//!   a sale of 102 bids, the first of them bidder A's: A's page opens with the newest 100,
//!   says A was outbid, and reads the two earlier bids when A asks (更早的出价).
//! - `the_dashboard_suspends_resumes_and_reprices_a_sale_and_switches_the_leader`
//!   (dashboard.mjs): the operator dashboard signs in with the token, suspends, resumes
//!   and changes the increment of a live sale from its table while a bidder's page
//!   follows, then switches the leader over and its nodes table follows.
//! - `the_bidder_page_is_chinese_first_and_english_on_request` (bidderzh.mjs): the bidder
//!   page in a Chinese browser (挂牌, 万元, 平方米, 竞买号, 领先), outbid by a bidder whose
//!   English browser gets the English page (已被超越, the title flashing with the outbid
//!   alert ticked), a bid below the minimum refused in Chinese, and the header's switch to
//!   English; its Chinese screenshot is the README's.
//! - `the_dashboard_is_chinese_first_and_english_on_request` (dashboardzh.mjs): the
//!   operator dashboard in a Chinese browser (挂牌, 万元, 主节点 / 从节点, the parcel in
//!   平方米), a sale suspended and resumed through its Chinese dialog (暂停竞价, 恢复竞价),
//!   and the header's switch to English, still signed in and remembered.
//!
//! Chromium, Node.js and npm must be installed (`apt-get install -y chromium nodejs npm`);
//! without them these tests fail, saying so. `npm ci` installs the script's one package
//! (playwright-core, pinned in tests/browser/package-lock.json) when it is missing.
//! Screenshots go to `screenshots/` at the top of the repository.

use gavel_testkit as common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{auction_spec, Node, ADMIN_TOKEN};

/// One scenario at a time: each runs a cluster and a browser, and timings are asserted.
static ONE_SCENARIO_AT_A_TIME: Mutex<()> = Mutex::new(());

const CHROMIUM: &str = "/usr/bin/chromium";
const INSTALL_HINT: &str = "install them with `apt-get install -y chromium nodejs npm` \
     (Debian's packages; .ci/run does it)";
const SCRIPT_TIME_LIMIT: Duration = Duration::from_secs(180);

#[test]
fn two_bidders_see_each_others_bids_within_a_second() {
    let _one_at_a_time = ONE_SCENARIO_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let stage = Stage::new("outbid", serde_json::json!({}));
    // A on the leader, B on a follower: B sees A's bids through replication, and B's bids
    // are forwarded to the leader.
    let leader = stage.leader();
    let follower = stage.other_than(&[leader]);
    let output = stage.run_script("outbid.mjs", leader, follower);
    assert_result_line(&output, "outbid");
}

#[test]
fn the_countdown_agrees_with_the_server_clock_within_200_ms() {
    let _one_at_a_time = ONE_SCENARIO_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let stage = Stage::new("countdown", serde_json::json!({}));
    let leader = stage.leader();
    let first = stage.other_than(&[leader]);
    let second = stage.other_than(&[leader, first]);
    let output = stage.run_script("countdown.mjs", first, second);
    assert_result_line(&output, "countdown");
}

#[test]
fn the_hall_screen_follows_every_live_sale_at_1920x1080() {
    let _one_at_a_time = ONE_SCENARIO_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    const SECOND: &str = "parcel-hall-second";
    let spec = serde_json::json!({
        "title": "苏地2026-WG-17号地块",
        "parcel": {"district": "姑苏区", "use": "住宅", "area_m2": 12000, "plot_ratio": 2.0},
    });
    let stage = Stage::prepared("hall", 180_000, spec, |node, auction_id| {
        let mut second = auction_spec(SECOND, 240_000, 60_000);
        second["title"] = serde_json::json!("苏地2026-WG-18号地块");
        second["parcel"] =
            serde_json::json!({"district": "吴中区", "use": "商服", "area_m2": 8600});
        node.create_auction(second);
        for bidder in ["alice", "bob"] {
            node.register_bidder(bidder);
            node.qualify(auction_id, bidder);
            node.qualify(SECOND, bidder);
        }
        vec![("GAVEL_AUCTION_SECOND".to_string(), SECOND.to_string())]
    });
    let leader = stage.leader();
    let follower = stage.other_than(&[leader]);
    let output = stage.run_script("hall.mjs", follower, leader);
    assert_result_line(&output, "hall");
}

#[test]
fn a_page_shows_the_newest_100_bids_and_reads_earlier_ones_when_asked() {
    let _one_at_a_time = ONE_SCENARIO_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let spec = serde_json::json!({});
    let stage = Stage::prepared("history", 180_000, spec, |node, auction_id| {
        let bidders = ["alice", "bob", "carol"];
        for bidder in bidders {
            node.register_bidder(bidder);
            node.qualify(auction_id, bidder);
        }
        let tokens = bidders.map(|bidder| node.login(bidder));
        // Alice bids first; Bob and Carol then outbid each other 101 times.
        for seq in 1..=102u64 {
            let token = match seq {
                1 => &tokens[0],
                even if even % 2 == 0 => &tokens[1],
                _ => &tokens[2],
            };
            let amount = 1_000_000 + (seq - 1) * 10_000;
            let (status, receipt) = node.bid(token, auction_id, amount, &format!("history-{seq}"));
            assert_eq!(status, 201, "bid {seq}: {receipt}");
        }
        Vec::new()
    });
    let leader = stage.leader();
    let follower = stage.other_than(&[leader]);
    let output = stage.run_script("history.mjs", follower, leader);
    assert_result_line(&output, "history");
}

#[test]
fn the_dashboard_suspends_resumes_and_reprices_a_sale_and_switches_the_leader() {
    let _one_at_a_time = ONE_SCENARIO_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let stage = Stage::new("dashboard", serde_json::json!({}));
    let leader = stage.leader();
    let follower = stage.other_than(&[leader]);
    // The dashboard on the leader's control listener, the bidder's page on a follower.
    let output = stage.run_script("dashboard.mjs", leader, follower);
    assert_result_line(&output, "dashboard");
}

#[test]
fn the_bidder_page_is_chinese_first_and_english_on_request() {
    let _one_at_a_time = ONE_SCENARIO_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let spec = serde_json::json!({
        "title": "苏地2026-WG-17号地块",
        "parcel": {"district": "姑苏区", "use": "住宅", "area_m2": 12000, "plot_ratio": 2.0},
    });
    let stage = Stage::new("bidderzh", spec);
    // The Chinese page on a follower, the English one on the leader.
    let leader = stage.leader();
    let follower = stage.other_than(&[leader]);
    let output = stage.run_script("bidderzh.mjs", follower, leader);
    assert_result_line(&output, "bidderzh");
}

#[test]
fn the_dashboard_is_chinese_first_and_english_on_request() {
    let _one_at_a_time = ONE_SCENARIO_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let spec = serde_json::json!({
        "title": "苏地2026-WG-17号地块",
        "parcel": {"district": "姑苏区", "use": "住宅", "area_m2": 12000, "plot_ratio": 2.0},
    });
    let stage = Stage::new("dashboardzh", spec);
    // The dashboard on the leader's control listener (its nodes table knows every role).
    let leader = stage.leader();
    let follower = stage.other_than(&[leader]);
    let output = stage.run_script("dashboardzh.mjs", leader, follower);
    assert_result_line(&output, "dashboardzh");
}

#[test]
fn the_page_keeps_bidding_after_its_node_is_killed() {
    let _one_at_a_time = ONE_SCENARIO_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // A long failover grace, so the takeover visibly extends the deadline.
    let mut stage = Stage::new(
        "failover",
        serde_json::json!({"failover_grace_ms": 300_000}),
    );
    let leader = stage.leader();
    let follower = stage.other_than(&[leader]);
    let signals = stage.dir.path().join("signals");
    std::fs::create_dir_all(&signals).expect("signal dir");
    let environment = stage.environment(leader, follower, &signals);
    let mut killed = None;
    let output = {
        let cluster = &mut stage.cluster;
        let mut on_tick = || {
            let asked = signals.join("connected");
            if killed.is_none() && asked.exists() {
                let node_id: u64 = std::fs::read_to_string(&asked)
                    .ok()
                    .and_then(|text| text.trim().parse().ok())
                    .expect("connected holds a node id");
                say(&format!("the page is on node {node_id}: SIGKILL"));
                cluster.node_mut(node_id).kill();
                std::fs::write(signals.join("killed"), node_id.to_string()).expect("signal");
                killed = Some(node_id);
            }
        };
        run_script("failover.mjs", &environment, &mut on_tick)
    };
    assert_result_line(&output, "failover");
    assert_eq!(
        killed,
        Some(leader),
        "the script asked to kill another node"
    );
    // Cross-check on a surviving node's control listener: six bids, hash chain intact.
    let survivor = stage.cluster.node(follower);
    let (status, result) = survivor.control(
        "GET",
        &format!("/control/v1/auctions/{}/result", stage.auction_id),
        None,
    );
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["bids"].as_array().map(Vec::len), Some(6), "{result}");
    assert_eq!(result["chain_verified"], true, "{result}");
}

#[test]
fn a_sale_with_a_deposit_shows_each_bidder_their_standing_and_the_winner_confirms() {
    let _one_at_a_time = ONE_SCENARIO_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    const DEPOSIT: u64 = 50_000;
    // Long enough for both pages, the dashboard and a bid; then two seconds of timed
    // bidding without a bid end the sale.
    let spec = serde_json::json!({
        "deposit": DEPOSIT,
        "winner_confirm_ms": 120_000,
        "countdown_ms": 2_000,
    });
    let stage = Stage::prepared("sale", 25_000, spec, |node, auction_id| {
        node.register_bidder("alice");
        node.register_bidder("bob");
        let (status, answer) = node.control(
            "POST",
            &format!("/control/v1/auctions/{auction_id}/deposits"),
            Some(serde_json::json!({"bidder_id": "alice", "amount": DEPOSIT, "reference": "bank-alice-1"})),
        );
        assert_eq!(status, 201, "{answer}");
        // Bob has paid nothing: the operator records his deposit on the dashboard during
        // the scenario, and he is never qualified.
        let number = node.qualify(auction_id, "alice");
        vec![
            ("GAVEL_BIDDER_NUMBER_A".to_string(), number.to_string()),
            ("GAVEL_DEPOSIT".to_string(), DEPOSIT.to_string()),
        ]
    });
    let leader = stage.leader();
    let follower = stage.other_than(&[leader]);
    let output = stage.run_script("sale.mjs", leader, follower);
    assert_result_line(&output, "sale");
    // What the pages showed, against the control listener: alice won and confirmed, her
    // deposit goes to the price and bob's is refunded.
    let (status, result) = stage.cluster.node(leader).control(
        "GET",
        &format!("/control/v1/auctions/{}/result", stage.auction_id),
        None,
    );
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["winner_bidder_id"], "alice", "{result}");
    assert_eq!(result["confirmation"], "confirmed", "{result}");
    let dispositions: Vec<(String, u64, String)> = result["deposits"]
        .as_array()
        .expect("deposits")
        .iter()
        .map(|deposit| {
            (
                deposit["bidder_id"].as_str().unwrap_or("").to_string(),
                deposit["amount"].as_u64().unwrap_or(0),
                deposit["disposition"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        dispositions,
        vec![
            ("alice".to_string(), DEPOSIT, "applied_to_price".to_string()),
            ("bob".to_string(), DEPOSIT, "refund".to_string()),
        ]
    );
}

#[test]
fn a_proxy_answers_on_the_page_and_a_sealed_quote_is_submitted_from_it() {
    let _one_at_a_time = ONE_SCENARIO_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // Start 1 000 000, increment 10 000: the cap is three increments up, and the sealed
    // window outlasts the scenario.
    let spec = serde_json::json!({
        "price_cap": 1_030_000,
        "cap_mode": "sealed_bid",
        "sealed_window_ms": 120_000,
        "sealed_ceiling": 1_200_000,
    });
    let stage = Stage::new("pastcap", spec);
    let leader = stage.leader();
    let follower = stage.other_than(&[leader]);
    let output = stage.run_script("pastcap.mjs", leader, follower);
    assert_result_line(&output, "pastcap");
    // What the pages showed, against the applied state: the sale is in its sealed window
    // with one quote, whose amount no public view shows.
    let view = stage.cluster.node(leader).auction(&stage.auction_id);
    assert_eq!(view["phase"], "capped", "{view}");
    assert_eq!(view["sealed_quotes_count"], 1, "{view}");
    assert!(!view.to_string().contains("1100000"), "{view}");
}

#[test]
fn secondary_bidding_and_signed_bids_run_from_the_page() {
    let _one_at_a_time = ONE_SCENARIO_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // Start 1 000 000, increment 10 000: the cap is two increments up; then the second
    // quantity from 100 by 10 up to 500.
    let spec = serde_json::json!({
        "price_cap": 1_020_000,
        "cap_mode": "secondary",
        "secondary": {"label": "self-held floor area", "unit": "m²", "start": 100, "increment": 10, "max": 500},
    });
    const SIGNED: &str = "parcel-rules11-signed";
    let stage = Stage::prepared("rules11", 180_000, spec, |node, auction_id| {
        let mut signed = auction_spec(SIGNED, 180_000, 60_000);
        signed["require_signed_bids"] = serde_json::json!(true);
        node.create_auction(signed);
        for bidder in ["alice", "bob"] {
            node.register_bidder(bidder);
            node.qualify(auction_id, bidder);
            node.qualify(SIGNED, bidder);
        }
        vec![("GAVEL_AUCTION_SIGNED".to_string(), SIGNED.to_string())]
    });
    let leader = stage.leader();
    let follower = stage.other_than(&[leader]);
    let output = stage.run_script("rules11.mjs", leader, follower);
    assert_result_line(&output, "rules11");
    // What the pages showed, against the applied state. Secondary bidding: bob leads the
    // second quantity at 110 (the sale may have closed since, at that amount).
    let node = stage.cluster.node(leader);
    let secondary = node.auction(&stage.auction_id)["secondary"].clone();
    assert_eq!(secondary["current"], 110, "{secondary}");
    assert_eq!(secondary["unit"], "m²", "{secondary}");
    // Signed bids: three bids, each kept with the signature of its bidder's registered key.
    let (status, result) = node.control(
        "GET",
        &format!("/control/v1/auctions/{SIGNED}/result"),
        None,
    );
    assert_eq!(status, 200, "{result}");
    let key_of = |bidder: &str| {
        let (status, keys) =
            node.control("GET", &format!("/control/v1/bidders/{bidder}/keys"), None);
        assert_eq!(status, 200, "{keys}");
        keys["keys"][0]["key_id"]
            .as_str()
            .expect("a key id")
            .to_string()
    };
    let signed_by: Vec<(u64, String)> = result["bid_signatures"]
        .as_array()
        .expect("bid_signatures")
        .iter()
        .map(|kept| {
            (
                kept["seq"].as_u64().unwrap_or(0),
                kept["key_id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        signed_by,
        vec![
            (1, key_of("alice")),
            (2, key_of("bob")),
            (3, key_of("alice"))
        ],
        "{result}"
    );
}

/// A running cluster with its bidders and one open auction.
struct Stage {
    cluster: Cluster,
    dir: tempfile::TempDir,
    auction_id: String,
    /// What the stage's preparation adds to the script's environment.
    extra_environment: Vec<(String, String)>,
}

impl Stage {
    /// Two qualified bidders, alice and bob, and an auction listed for three minutes.
    fn new(name: &str, extra_spec: serde_json::Value) -> Stage {
        Stage::prepared(name, 180_000, extra_spec, |node, auction_id| {
            for bidder in ["alice", "bob"] {
                node.register_bidder(bidder);
                node.qualify(auction_id, bidder);
            }
            Vec::new()
        })
    }

    /// An auction whose listing closes in `listing_ms`, with `extra_spec` over the
    /// testkit's specification; `prepare` registers and qualifies the bidders on the
    /// leader and answers what it adds to the script's environment.
    fn prepared(
        name: &str,
        listing_ms: u64,
        extra_spec: serde_json::Value,
        prepare: impl FnOnce(&Node, &str) -> Vec<(String, String)>,
    ) -> Stage {
        let browser_dir = prepared_browser_dir();
        assert!(browser_dir.join("node_modules").exists());
        let dir = tempfile::tempdir().expect("temp dir");
        let cluster = Cluster::start_with_event_listeners(dir.path(), 3, 0);
        let leader = cluster
            .leader(Duration::from_secs(10))
            .expect("a leader within 10 s");
        let node = cluster.node(leader);
        let auction_id = format!("parcel-{name}");
        let mut spec = auction_spec(&auction_id, listing_ms, 60_000);
        for (key, value) in extra_spec.as_object().into_iter().flatten() {
            spec[key] = value.clone();
        }
        node.create_auction(spec);
        let extra_environment = prepare(node, &auction_id);
        Stage {
            cluster,
            dir,
            auction_id,
            extra_environment,
        }
    }

    fn leader(&self) -> u64 {
        self.cluster
            .leader(Duration::from_secs(10))
            .expect("a leader within 10 s")
    }

    fn other_than(&self, taken: &[u64]) -> u64 {
        (1..=self.cluster.nodes.len() as u64)
            .find(|id| !taken.contains(id))
            .expect("a node not taken")
    }

    /// What a scenario script reads (tests/browser/lib.mjs lists it).
    fn environment(&self, page_a: u64, page_b: u64, signals: &Path) -> Vec<(String, String)> {
        let urls: Vec<String> = self
            .cluster
            .nodes
            .iter()
            .map(|node| node.public_url.clone())
            .collect();
        let listeners: Vec<String> = (self.cluster.nodes.iter())
            .filter_map(|node| node.events_url.clone())
            .collect();
        let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("screenshots");
        [
            ("GAVEL_NODES", urls.join(",")),
            ("GAVEL_EVENT_LISTENERS", listeners.join(",")),
            ("GAVEL_PAGE_A", self.cluster.node(page_a).public_url.clone()),
            ("GAVEL_PAGE_B", self.cluster.node(page_b).public_url.clone()),
            ("GAVEL_BIDDER_A", "alice:secret-alice".to_string()),
            ("GAVEL_BIDDER_B", "bob:secret-bob".to_string()),
            ("GAVEL_AUCTION", self.auction_id.clone()),
            ("GAVEL_SIGNAL_DIR", signals.display().to_string()),
            ("GAVEL_SCREENSHOTS", screenshots.display().to_string()),
            (
                "GAVEL_CONTROL_A",
                self.cluster.node(page_a).control_url.clone(),
            ),
            ("GAVEL_ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .chain(self.extra_environment.iter().cloned())
        .collect()
    }

    fn run_script(&self, script: &str, page_a: u64, page_b: u64) -> String {
        let environment = self.environment(page_a, page_b, self.dir.path());
        run_script(script, &environment, &mut || {})
    }
}

fn say(message: &str) {
    println!("[browser.rs] {message}");
}

/// Runs `node tests/browser/<script>`, calling `on_tick` every 5 ms while it runs; fails
/// the test with the script's output unless it exits 0 within the time limit.
fn run_script(script: &str, environment: &[(String, String)], on_tick: &mut dyn FnMut()) -> String {
    let browser_dir = prepared_browser_dir();
    let mut child = Command::new("node")
        .arg(browser_dir.join(script))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .envs(environment.iter().map(|(key, value)| (key, value)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run node: {error}; {INSTALL_HINT}"));
    let output = Arc::new(Mutex::new(String::new()));
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|out| Box::new(out) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|err| Box::new(err) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|stream| {
        let output = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let mut output = output.lock().unwrap_or_else(|e| e.into_inner());
                output.push_str(&line);
                output.push('\n');
            }
        })
    })
    .collect();
    let started = Instant::now();
    let status = loop {
        on_tick();
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if started.elapsed() > SCRIPT_TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    for reader in readers {
        let _ = reader.join();
    }
    let output = output.lock().unwrap_or_else(|e| e.into_inner()).clone();
    println!("--- node tests/browser/{script}\n{output}---");
    match status {
        Some(status) if status.success() => output,
        Some(status) => panic!("tests/browser/{script} failed ({status}):\n{output}"),
        None => panic!("tests/browser/{script} ran over {SCRIPT_TIME_LIMIT:?}:\n{output}"),
    }
}

fn assert_result_line(output: &str, scenario: &str) {
    let prefix = format!("RESULT {scenario} ");
    assert!(
        output.lines().any(|line| line.starts_with(&prefix)),
        "no `{prefix}` line in the script's output:\n{output}"
    );
}

/// Checks that Chromium, Node.js and npm are installed (failing with how to install them),
/// and installs the scripts' npm package from the lock file when it is missing.
fn prepared_browser_dir() -> PathBuf {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the browser tests need Debian's Chromium; {INSTALL_HINT}"
    );
    for tool in ["node", "npm"] {
        let works = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success());
        assert!(
            works,
            "`{tool}` is missing: the browser tests need it; {INSTALL_HINT}"
        );
    }
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !browser_dir.join("node_modules/playwright-core").exists() {
        let output = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&browser_dir)
            .output()
            .expect("run npm ci");
        assert!(
            output.status.success(),
            "npm ci --prefix tests/browser failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    browser_dir
}
