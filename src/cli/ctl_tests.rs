//! Tests of the `gavel ctl` command tree: each command's request.
use super::*;
use crate::cli::{Cli, Command};
use clap::Parser;

fn request_of(arguments: &[&str]) -> ApiRequest {
    let cli = Cli::try_parse_from(["gavel", "ctl"].iter().chain(arguments))
        .unwrap_or_else(|error| panic!("{error}"));
    let Command::Ctl(args) = cli.command else {
        panic!("not a ctl command")
    };
    request_for(&args.command).unwrap_or_else(|failure| panic!("{}", failure.message))
}

#[test]
fn each_command_sends_the_request_of_the_api() {
    let post = |path: &str, body: Value| ApiRequest::post_control(path, body);
    let cases = [
        (
            vec![
                "bidder",
                "add",
                "--id",
                "b1",
                "--name",
                "Ann",
                "--secret",
                "s3cret-pass",
            ],
            post(
                "/control/v1/bidders",
                json!({"bidder_id": "b1", "name": "Ann", "secret": "s3cret-pass"}),
            ),
        ),
        (
            vec![
                "bidder",
                "key",
                "--bidder",
                "b1",
                "--algorithm",
                "ed25519",
                "--public-key",
                "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
            ],
            post(
                "/control/v1/bidders/b1/keys",
                json!({"algorithm": "ed25519", "public_key": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="}),
            ),
        ),
        (
            vec!["auction", "qualify", "--auction", "a1", "--bidder", "b1"],
            post(
                "/control/v1/auctions/a1/qualifications",
                json!({"bidder_id": "b1"}),
            ),
        ),
        (
            vec![
                "auction",
                "suspend",
                "--auction",
                "a1",
                "--reason",
                "power cut",
            ],
            post(
                "/control/v1/auctions/a1/suspend",
                json!({"reason": "power cut"}),
            ),
        ),
        (
            vec![
                "auction",
                "deposit",
                "--auction",
                "a1",
                "--bidder",
                "b1",
                "--amount",
                "500",
                "--reference",
                "BOC-1",
            ],
            post(
                "/control/v1/auctions/a1/deposits",
                json!({"bidder_id": "b1", "amount": 500, "reference": "BOC-1"}),
            ),
        ),
        (
            vec![
                "auction",
                "default",
                "--auction",
                "a1",
                "--reason",
                "no show",
            ],
            post(
                "/control/v1/auctions/a1/default",
                json!({"reason": "no show"}),
            ),
        ),
        (
            vec!["auction", "resume", "--auction", "a1", "--reason", "back"],
            post("/control/v1/auctions/a1/resume", json!({"reason": "back"})),
        ),
        (
            vec![
                "auction",
                "terminate",
                "--auction",
                "a1",
                "--reason",
                "withdrawn",
            ],
            post(
                "/control/v1/auctions/a1/terminate",
                json!({"reason": "withdrawn"}),
            ),
        ),
        (
            vec![
                "auction",
                "increment",
                "--auction",
                "a1",
                "--increment",
                "500",
                "--reason",
                "slow",
            ],
            post(
                "/control/v1/auctions/a1/increment",
                json!({"increment": 500, "reason": "slow"}),
            ),
        ),
        (
            vec!["auction", "result", "--auction", "a1"],
            ApiRequest::get_control("/control/v1/auctions/a1/result"),
        ),
        (
            vec!["auction", "list"],
            ApiRequest::get_public("/api/v1/auctions"),
        ),
        (
            vec!["cluster"],
            ApiRequest::get_control("/control/v1/cluster"),
        ),
        (
            vec!["switchover", "--to", "2"],
            post("/control/v1/cluster/switchover", json!({"to_node_id": 2})),
        ),
        (
            vec!["janitor"],
            ApiRequest::get_control("/control/v1/janitor"),
        ),
    ];
    for (arguments, expected) in cases {
        assert_eq!(request_of(&arguments), expected, "{arguments:?}");
    }
}

#[test]
fn auction_create_posts_the_file_as_is() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("spec.json");
    let spec =
        json!({"id": "a1", "title": "Parcel 7", "start_price": 1000, "extra": {"kept": true}});
    std::fs::write(&path, spec.to_string()).unwrap();
    let request = request_of(&["auction", "create", "--file", path.to_str().unwrap()]);
    assert_eq!(
        request,
        ApiRequest::post_control("/control/v1/auctions", spec)
    );
}

#[test]
fn ids_are_encoded_as_one_path_segment() {
    assert_eq!(path_segment("lot 7/b"), "lot%207%2Fb");
    assert_eq!(path_segment("A-1_x.~"), "A-1_x.~");
}

#[test]
fn global_options_may_come_after_the_subcommand() {
    let cli = Cli::try_parse_from([
        "gavel",
        "ctl",
        "janitor",
        "--control",
        "http://10.0.0.2:9082",
        "--token",
        "t",
    ])
    .unwrap();
    let Command::Ctl(args) = cli.command else {
        panic!("not a ctl command")
    };
    assert_eq!(args.control.control, "http://10.0.0.2:9082");
    assert_eq!(args.control.token.as_deref(), Some("t"));
}

#[test]
fn node_add_and_remove_send_the_cluster_node_requests() {
    let add = request_of(&[
        "node",
        "add",
        "--id",
        "5",
        "--peer",
        "10.0.0.5:7085",
        "--public-url",
        "http://10.0.0.5:8085",
        "--control-url",
        "http://10.0.0.5:9085",
    ]);
    assert_eq!(
        add,
        ApiRequest::post_control(
            "/control/v1/cluster/nodes",
            json!({"node_id": 5, "name": "node-5", "peer": "10.0.0.5:7085",
                "public_url": "http://10.0.0.5:8085", "control_url": "http://10.0.0.5:9085",
                "voter": false}),
        )
    );
    let voter = request_of(&[
        "node",
        "add",
        "--id",
        "5",
        "--peer",
        "10.0.0.5:7085",
        "--public-url",
        "http://10.0.0.5:8085",
        "--control-url",
        "http://10.0.0.5:9085",
        "--voter",
    ]);
    assert_eq!(
        voter.body.as_ref().map(|body| &body["voter"]),
        Some(&json!(true))
    );
    let remove = request_of(&["node", "remove", "--id", "5"]);
    assert_eq!(
        (remove.method, remove.path.as_str(), remove.body),
        ("DELETE", "/control/v1/cluster/nodes/5?force=false", None)
    );
    let forced = request_of(&["node", "remove", "--id", "5", "--force"]);
    assert_eq!(forced.path, "/control/v1/cluster/nodes/5?force=true");
    assert!(Cli::try_parse_from(["gavel", "ctl", "node", "remove", "--id", "x"]).is_err());
}
