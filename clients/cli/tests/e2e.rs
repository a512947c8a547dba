//! End-to-end tests of the `confab` binary against a real `confabd`
//! process, over `ws://` and `quic://`: the README tour, `--json` output
//! and history paging, direct conversations (`@user`), `tail` (live, across
//! a daemon restart, ended by a logout), errors and exit codes, guests and
//! logout, trust on first use, and token refresh kept in the profile.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::{Daemon, DaemonSpec, PASSWORD, User, Wire};

/// Runs a scenario once per wire, as `NAME::ws` and `NAME::quic`.
macro_rules! over_both_wires {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn ws() {
                super::$scenario(super::Wire::Ws)
            }
            #[test]
            fn quic() {
                super::$scenario(super::Wire::Quic)
            }
        }
    )*};
}

over_both_wires!(
    readme_tour,
    json_output_and_history_paging,
    tail_prints_live_events,
    tail_survives_a_daemon_restart,
    errors_are_one_line_with_the_right_exit_status,
    guests_and_logout,
);

/// The seq in `Sent to #room (seq N).`
#[track_caller]
fn sent_seq(line: &str) -> u64 {
    let seq = line.rsplit_once("(seq ").and_then(|(_, rest)| rest.strip_suffix(").")).unwrap_or_else(|| {
        panic!("not a `Sent to` line: {line:?}");
    });
    seq.parse().unwrap_or_else(|_| panic!("no seq in {line:?}"))
}

/// The row of a `rooms` or `members` table whose first cell is `first`,
/// split into cells.
#[track_caller]
fn row(table: &str, first: &str) -> Vec<String> {
    table
        .lines()
        .map(|line| line.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned).collect::<Vec<_>>())
        .find(|cells| cells.first().map(String::as_str) == Some(first))
        .unwrap_or_else(|| panic!("no row {first:?} in:\n{table}"))
}

/// The text of every message in `--json history` output.
fn texts(events: &[Value]) -> Vec<&str> {
    events.iter().filter(|e| e["kind"] == "message").map(|e| e["text"].as_str().expect("text")).collect()
}

fn readme_tour(wire: Wire) {
    let mut daemon = Daemon::start();
    let alice = User::on(&daemon, wire);
    let bob = User::on(&daemon, wire);

    let registered = alice.register("alice");
    assert_eq!(registered.stdout, "Logged in as alice.\n", "{registered}");
    assert_eq!(registered.stderr, "", "{registered}");
    let created = alice.ok(&["create", "general"]);
    assert!(created.stdout.starts_with("Created #general (room "), "{created}");
    assert!(created.stdout.ends_with(", public, 1 member).\n"), "{created}");
    // Several words are one message.
    let sent = alice.ok(&["send", "general", "hello,", "world"]);
    let first_seq = sent_seq(sent.stdout.trim_end());
    assert!(sent.stdout.starts_with("Sent to #general (seq "), "{sent}");

    let history = alice.ok(&["history", "general"]);
    let lines = history.lines();
    assert_eq!(lines.len(), 3, "{history}");
    assert!(lines[0].ends_with("] #general * alice created the room"), "{history}");
    assert!(lines[1].ends_with("] #general * alice joined"), "{history}");
    assert!(lines[2].ends_with("] #general <alice> hello, world"), "{history}");
    assert!(lines[2].starts_with('['), "{history}");
    assert_eq!(history.stderr, "", "{history}");

    // A second user joins and answers. Without a terminal, the password
    // is read from standard input even without --password-stdin.
    let registered = bob.run_with_stdin(&["register", "bob"], &format!("{PASSWORD}\n")).success();
    assert_eq!(registered.stdout, "Logged in as bob.\n");
    let joined = bob.ok(&["join", "general"]);
    assert!(joined.stdout.starts_with("Joined #general (room "), "{joined}");
    assert!(joined.stdout.ends_with(", public, 2 members).\n"), "{joined}");
    let seen = bob.ok(&["history", "general"]);
    assert!(seen.stdout.contains("#general <alice> hello, world\n"), "{seen}");
    let answer = bob.ok(&["send", "#general", "hi alice"]);
    assert!(sent_seq(answer.stdout.trim_end()) > first_seq, "{answer}");
    let history = alice.ok(&["history", "general"]);
    let lines = history.lines();
    assert!(lines[3].ends_with("#general * bob joined"), "{history}");
    assert!(lines[4].ends_with("#general <bob> hi alice"), "{history}");

    // A private room: invited, then joined.
    let secret = alice.ok(&["create", "secret", "--private"]);
    assert!(secret.stdout.starts_with("Created #secret (room "), "{secret}");
    assert!(secret.stdout.ends_with(", private, 1 member).\n"), "{secret}");
    assert_eq!(alice.ok(&["invite", "secret", "bob"]).stdout, "Invited bob to #secret.\n");
    let rooms = bob.ok(&["rooms"]);
    assert_eq!(row(&rooms.stdout, "#secret")[1..4], ["private", "1", "invited"], "{rooms}");
    let joined = bob.ok(&["join", "secret"]);
    assert!(joined.stdout.ends_with(", private, 2 members).\n"), "{joined}");

    // A direct conversation, used by `@user`.
    let opened = alice.ok(&["dm", "bob"]);
    assert!(opened.stdout.starts_with("Opened @bob (room "), "{opened}");
    assert!(opened.stdout.ends_with(", direct, 2 members).\n"), "{opened}");
    let psst = alice.ok(&["send", "@bob", "psst"]);
    assert!(psst.stdout.starts_with("Sent to @bob (seq "), "{psst}");
    let dm = bob.ok(&["history", "@alice"]);
    assert!(dm.stdout.ends_with("] @alice <alice> psst\n"), "{dm}");
    // Opening it again, from either side, finds the same room.
    let reopened = bob.ok(&["dm", "alice"]);
    assert_eq!(reopened.stdout, opened.stdout.replace("@bob", "@alice"));

    let rooms = alice.ok(&["rooms"]);
    assert_eq!(
        rooms.lines()[0].split_whitespace().collect::<Vec<_>>(),
        ["ROOM", "KIND", "MEMBERS", "MEMBERSHIP", "ID"]
    );
    assert_eq!(row(&rooms.stdout, "#general")[1..4], ["public", "2", "joined"], "{rooms}");
    assert_eq!(row(&rooms.stdout, "#secret")[1..4], ["private", "2", "joined"], "{rooms}");
    assert_eq!(row(&rooms.stdout, "@bob")[1..4], ["direct", "2", "joined"], "{rooms}");
    assert_eq!(rooms.lines().len(), 4, "{rooms}");
    let members = alice.ok(&["members", "general"]);
    assert_eq!(row(&members.stdout, "alice")[1..], ["owner", "joined"], "{members}");
    assert_eq!(row(&members.stdout, "bob")[1..], ["member", "joined"], "{members}");

    // The profile remembers the server (and, for QUIC, the certificate).
    let again = alice.run_from_profile(&["history", "general", "--limit", "1"]).success();
    assert!(again.stdout.ends_with("#general <bob> hi alice\n"), "{again}");
    if wire == Wire::Ws {
        // `ws://host:port` is short for `ws://host:port/ws`: the same login.
        let long = User::new(format!("{}/ws", daemon.ws_url()), None);
        std::fs::create_dir_all(long.profile_dir()).unwrap();
        std::fs::copy(alice.profile_dir().join("profile.json"), long.profile_dir().join("profile.json")).unwrap();
        long.ok(&["rooms"]);
    }

    assert_eq!(bob.ok(&["leave", "general"]).stdout, "Left #general.\n");
    let members = alice.ok(&["members", "general"]);
    assert!(!members.stdout.contains("bob"), "{members}");
    daemon.assert_serving();
}

fn json_output_and_history_paging(wire: Wire) {
    let mut daemon = Daemon::start();
    let alice = User::on(&daemon, wire);
    let bob = User::on(&daemon, wire);

    let me = alice.run_with_stdin(&["--json", "register", "alice", "--password-stdin"], &format!("{PASSWORD}\n"));
    let me = me.success().json_one();
    assert_eq!(me["user"], "alice");
    assert_eq!(me["guest"], false);
    assert!(me["user_id"].as_u64().unwrap() > 0, "{me}");

    let room = alice.ok(&["--json", "create", "general"]).json_one();
    assert_eq!(room["action"], "created");
    assert_eq!(room["room"], "general");
    assert_eq!(room["kind"], "public");
    assert_eq!(room["membership"], "joined");
    assert_eq!(room["members"], 1);
    assert_eq!(room["peer"], Value::Null);
    let room_id = room["room_id"].as_u64().expect("room_id");

    let mut seqs = Vec::new();
    for n in 1..=7 {
        let sent = alice.ok(&["--json", "send", "general", &format!("message {n}")]).json_one();
        assert_eq!(sent["room"], "general");
        assert_eq!(sent["room_id"], room_id);
        assert_eq!(sent["duplicate"], false);
        assert!(sent["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{sent}");
        assert!(sent["time_ms"].as_u64().unwrap() > 0, "{sent}");
        seqs.push(sent["seq"].as_u64().expect("seq"));
    }
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");

    // The whole log: RoomCreated, MemberJoined, seven messages.
    let all = alice.ok(&["--json", "history", "general"]);
    assert_eq!(all.stderr, "", "{all}");
    let events = all.json();
    assert_eq!(events.len(), 9, "{all}");
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event["room"], "general", "{event}");
        assert_eq!(event["room_id"], room_id, "{event}");
        assert_eq!(event["seq"], i as u64 + 1, "{event}");
        assert_eq!(event["sender"], "alice", "{event}");
        assert!(event["sender_id"].as_u64().unwrap() > 0, "{event}");
        assert!(event["time"].as_str().is_some(), "{event}");
    }
    assert_eq!(events[0]["kind"], "room_created");
    assert_eq!(events[0]["name"], "general");
    assert_eq!(events[0]["room_kind"], "public");
    assert_eq!(events[1]["kind"], "member_joined");
    let expected: Vec<String> = (1..=7).map(|n| format!("message {n}")).collect();
    assert_eq!(texts(&events), expected);
    assert!(events[2]["client_txn_id"].as_str().is_some_and(|t| !t.is_empty()), "{}", events[2]);

    // Paging backward from the newest, then forward.
    let page = alice.ok(&["--json", "history", "general", "--limit", "3"]);
    assert_eq!(texts(&page.json()), ["message 5", "message 6", "message 7"]);
    assert_eq!(page.stderr, "", "JSON mode adds no paging hint to the output:\n{page}");
    let before = seqs[4].to_string();
    let older = alice.ok(&["--json", "history", "general", "--limit", "3", "--before", &before]);
    assert_eq!(texts(&older.json()), ["message 2", "message 3", "message 4"]);
    let after = seqs[1].to_string();
    let newer = alice.ok(&["--json", "history", "general", "--limit", "2", "--after", &after]);
    assert_eq!(texts(&newer.json()), ["message 3", "message 4"]);
    let last = seqs[6].to_string();
    assert_eq!(alice.ok(&["--json", "history", "general", "--after", &last]).stdout, "");

    // For people: the hint says how to get the next page, and works.
    let page = alice.ok(&["history", "general", "--limit", "3"]);
    assert_eq!(page.lines().len(), 3, "{page}");
    assert!(page.lines()[0].ends_with("<alice> message 5"), "{page}");
    assert_eq!(page.stderr, format!("confab: more history: --before {before}\n"), "{page}");
    let next = alice.ok(&["history", "general", "--limit", "3", "--before", &before]);
    assert!(next.lines()[0].ends_with("<alice> message 2"), "{next}");
    let forward = alice.ok(&["history", "general", "--limit", "1", "--after", &seqs[4].to_string()]);
    assert!(forward.stdout.ends_with("<alice> message 6\n"), "{forward}");
    assert_eq!(forward.stderr, format!("confab: more history: --after {}\n", seqs[5]), "{forward}");

    // Rooms, members, direct conversations.
    bob.register("bob");
    bob.ok(&["join", "general"]);
    let rooms = alice.ok(&["--json", "rooms"]).json_one();
    assert_eq!((rooms["room"].as_str(), rooms["members"].as_u64()), (Some("general"), Some(2)), "{rooms}");
    assert_eq!(rooms["head_seq"], seqs[6] + 1, "{rooms}");
    let directory = bob.ok(&["--json", "rooms", "--directory"]).json_one();
    assert_eq!((directory["room"].as_str(), directory["membership"].as_str()), (Some("general"), Some("joined")));
    let members = alice.ok(&["--json", "members", "general"]).json();
    let roles: Vec<(&str, &str, &str)> = members
        .iter()
        .map(|m| (m["user"].as_str().unwrap(), m["role"].as_str().unwrap(), m["membership"].as_str().unwrap()))
        .collect();
    assert!(roles.contains(&("alice", "owner", "joined")) && roles.contains(&("bob", "member", "joined")), "{roles:?}");
    assert!(members.iter().all(|m| m["room_id"] == room_id && m["guest"] == false), "{members:?}");

    let dm = alice.ok(&["--json", "dm", "bob"]).json_one();
    assert_eq!(dm["action"], "opened");
    assert_eq!(dm["kind"], "direct");
    assert_eq!(dm["peer"], "bob");
    // `room` is what names it on the command line.
    assert_eq!(dm["room"], "@bob");
    let sent = alice.ok(&["--json", "send", "@bob", "psst"]).json_one();
    assert_eq!((&sent["room"], &sent["room_id"]), (&dm["room"], &dm["room_id"]));
    let events = bob.ok(&["--json", "history", "@alice", "--limit", "1"]).json_one();
    assert_eq!((events["room"].as_str(), events["text"].as_str()), (Some("@alice"), Some("psst")), "{events}");

    if wire == Wire::Ws {
        // The JSON WebSocket encoding reads the same history.
        let proto = alice.ok(&["--json", "history", "general"]);
        let json = alice.ok(&["--json", "--encoding", "json", "history", "general"]);
        assert_eq!(proto.stdout, json.stdout);
        alice.ok(&["--encoding", "json", "send", "general", "over JSON frames"]);
        let last = alice.ok(&["--json", "history", "general", "--limit", "1"]).json_one();
        assert_eq!(last["text"], "over JSON frames");
    }
    daemon.assert_serving();
}

fn tail_prints_live_events(wire: Wire) {
    let mut daemon = Daemon::start();
    let alice = User::on(&daemon, wire);
    let bob = User::on(&daemon, wire);
    alice.register("alice");
    alice.ok(&["create", "general"]);
    alice.ok(&["send", "general", "said before the tail"]);
    bob.register("bob");
    bob.ok(&["join", "general"]);

    // Room names are case-insensitive, here as everywhere.
    let mut tail = bob.spawn(&["tail", "General"]);
    tail.expect_stderr("announcing the tail", |l| l == "confab: showing new events in #general; Ctrl-C to stop");
    alice.ok(&["send", "general", "hi bob"]);
    let line = tail.expect_stdout("with alice's message", |l| l.contains("hi bob"));
    assert!(line.starts_with('[') && line.ends_with("] #general <alice> hi bob"), "{line}");

    let carol = User::on(&daemon, wire);
    carol.register("carol");
    carol.ok(&["join", "general"]);
    tail.expect_stdout("with carol joining", |l| l.ends_with("#general * carol joined"));
    carol.ok(&["send", "general", "hello", "all"]);
    tail.expect_stdout("with carol's message", |l| l.ends_with("#general <carol> hello all"));

    // Ctrl-C ends it cleanly; nothing old, nothing twice.
    tail.interrupt();
    let status = tail.wait();
    assert!(status.success(), "`{}` exited with {status} on SIGINT; stderr: {:?}", tail.command(), tail.stderr_seen);
    assert_eq!(tail.stdout_seen.len(), 3, "{:?}", tail.stdout_seen);

    // Only rooms one has joined can be tailed.
    alice.ok(&["create", "other"]);
    bob.run(&["tail", "other"]).error(&["you are not in #other", "confab join other"]);

    // Logging out elsewhere ends the tail, with one clear error.
    let mut tail = bob.spawn(&["tail", "general"]);
    tail.expect_stderr("announcing the tail", |l| l.starts_with("confab: showing new events in #general"));
    bob.ok(&["logout"]);
    let status = tail.wait();
    assert_eq!(status.code(), Some(1), "`{}`: {:?}", tail.command(), tail.stderr_seen);
    assert_eq!(tail.stderr_seen.len(), 2, "{:?}", tail.stderr_seen);
    assert!(tail.stderr_seen[1].starts_with("confab: error: "), "{:?}", tail.stderr_seen);
    assert!(tail.stderr_seen[1].contains("LOGIN_REVOKED"), "{:?}", tail.stderr_seen);
    assert!(tail.stderr_seen[1].contains("log in again"), "{:?}", tail.stderr_seen);
    daemon.assert_serving();
}

fn tail_survives_a_daemon_restart(wire: Wire) {
    let mut daemon = Daemon::start();
    let alice = User::on(&daemon, wire);
    let bob = User::on(&daemon, wire);
    alice.register("alice");
    alice.ok(&["create", "general"]);
    bob.register("bob");
    bob.ok(&["join", "general"]);

    let mut tail = bob.spawn(&["tail", "general"]);
    tail.expect_stderr("announcing the tail", |l| l.starts_with("confab: showing new events in #general"));
    alice.ok(&["send", "general", "before the restart"]);
    tail.expect_stdout("before the restart", |l| l.ends_with("<alice> before the restart"));

    // Same data, same ports; the message is sent without waiting for the
    // tail to reconnect: resuming must bring it, once.
    daemon.restart();
    alice.ok(&["send", "general", "after the restart"]);
    tail.expect_stdout("after the restart", |l| l.ends_with("<alice> after the restart"));
    alice.ok(&["send", "general", "and again"]);
    tail.expect_stdout("and again", |l| l.ends_with("<alice> and again"));
    tail.interrupt();
    let status = tail.wait();
    assert!(status.success(), "`{}` exited with {status}; stderr: {:?}", tail.command(), tail.stderr_seen);
    let messages: Vec<&String> = tail.stdout_seen.iter().filter(|l| l.contains("<alice>")).collect();
    assert_eq!(messages.len(), 3, "{:?}", tail.stdout_seen);
    assert!(
        tail.stderr_seen.iter().any(|l| l.contains("reconnect") || l.contains("closed the connection")),
        "the tail did not say it lost the connection: {:?}",
        tail.stderr_seen
    );
    daemon.assert_serving();
}

fn errors_are_one_line_with_the_right_exit_status(wire: Wire) {
    let mut daemon = Daemon::start();
    let alice = User::on(&daemon, wire);
    let stranger = User::on(&daemon, wire);

    // Nobody is logged in in a new profile.
    for args in [&["rooms"][..], &["send", "general", "hi"], &["history", "general"], &["logout"]] {
        stranger.run(args).error(&["not logged in to "]);
    }
    stranger.run(&["rooms"]).error(&["confab login USER"]);

    // Usage errors: status 2, before anything else.
    for args in [
        &["send", "general"][..],
        &["history", "general", "--before", "1", "--after", "2"],
        &["history", "general", "--limit", "many"],
        &["frobnicate"],
        &[],
    ] {
        let outcome = alice.run(args).failure(2);
        assert!(outcome.stderr.starts_with("error: "), "{outcome}");
        assert!(outcome.stderr.contains("--help"), "{outcome}");
    }

    alice.register("alice");
    alice.run(&["send", "nowhere", "hi"]).error(&["ROOM_NOT_FOUND", "#nowhere"]);
    // The daemon keeps serving after every failure.
    alice.ok(&["create", "general"]);
    alice.run(&["create", "general"]).error(&["NAME_TAKEN"]);
    alice.ok(&["send", "general", "still", "here"]);
    alice.run(&["invite", "general", "nobody"]).error(&["USER_NOT_FOUND", "nobody"]);
    alice.run(&["dm", "alice"]).error(&["FORBIDDEN"]);
    alice.run(&["history", "general", "--limit", "1000"]).error(&["INVALID_ARGUMENT", "limit"]);
    alice.run(&["send", "general", " "]).error(&["nothing to send"]);
    alice.run(&["send", "@nobody", "hi"]).error(&["no direct conversation with nobody", "confab dm nobody"]);
    let history = alice.ok(&["history", "general"]);
    assert!(history.stdout.ends_with("<alice> still here\n"), "{history}");

    // Accounts.
    let password = format!("{PASSWORD}\n");
    stranger.run_with_stdin(&["register", "alice", "--password-stdin"], &password).error(&["NAME_TAKEN"]);
    stranger
        .run_with_stdin(&["register", "carol", "--password-stdin"], "short\n")
        .error(&["INVALID_ARGUMENT", "password"]);
    stranger.run_with_stdin(&["register", "carol", "--password-stdin"], "\n").error(&["the password is empty"]);
    stranger
        .run_with_stdin(&["register", "Bad Name", "--password-stdin"], &password)
        .error(&["INVALID_ARGUMENT", "username"]);
    alice
        .run_with_stdin(&["login", "alice", "--password-stdin"], "not the password\n")
        .error(&["INVALID_CREDENTIALS", "wrong username or password"]);
    stranger.run_with_stdin(&["login", "nobody", "--password-stdin"], &password).error(&["INVALID_CREDENTIALS"]);
    // A failed login leaves the stored session alone.
    alice.ok(&["rooms"]);
    let login = stranger.run_with_stdin(&["login", "alice", "--password-stdin"], &password).success();
    assert_eq!(login.stdout, "Logged in as alice.\n");

    // Private rooms do not leak.
    alice.ok(&["create", "vault", "--private"]);
    let bob = User::on(&daemon, wire);
    bob.register("bob");
    bob.run(&["join", "vault"]).error(&["ROOM_NOT_FOUND"]);
    bob.run(&["history", "vault"]).error(&["ROOM_NOT_FOUND"]);
    bob.run(&["send", "vault", "let me in"]).error(&["ROOM_NOT_FOUND"]);
    alice.ok(&["invite", "vault", "bob"]);
    bob.run(&["history", "vault"]).error(&["NOT_A_MEMBER"]);
    bob.ok(&["join", "vault"]);
    bob.ok(&["send", "vault", "thanks"]);

    // A server that is not there: a clear error, quickly.
    let port = support::closed_tcp_port();
    let nowhere = User::new(format!("ws://127.0.0.1:{port}"), None);
    nowhere.run(&["guest", "visitor"]).error(&[&format!("127.0.0.1:{port}")]);

    daemon.assert_serving();
    alice.ok(&["send", "general", "the end"]);
}

fn guests_and_logout(wire: Wire) {
    let mut daemon = Daemon::start();
    let alice = User::on(&daemon, wire);
    alice.register("alice");
    alice.ok(&["create", "lobby"]);
    alice.ok(&["create", "vault", "--private"]);

    let visitor = User::on(&daemon, wire);
    assert_eq!(visitor.ok(&["guest", "visitor"]).stdout, "Entered as guest visitor.\n");
    visitor.ok(&["join", "lobby"]);
    visitor.ok(&["send", "lobby", "hello from a guest"]);
    let history = alice.ok(&["history", "lobby"]);
    assert!(history.stdout.ends_with("#lobby <visitor> hello from a guest\n"), "{history}");
    let members = alice.ok(&["--json", "members", "lobby"]).json();
    let guest = members.iter().find(|m| m["user"] == "visitor").expect("the guest is a member");
    assert_eq!(guest["guest"], true);
    let members = alice.ok(&["members", "lobby"]);
    assert_eq!(row(&members.stdout, "visitor (guest)")[1..], ["member", "joined"], "{members}");

    // What guests may not do.
    visitor.run(&["join", "vault"]).error(&["ROOM_NOT_FOUND"]);
    visitor.run(&["create", "backroom", "--private"]).error(&["FORBIDDEN"]);
    visitor.run(&["dm", "alice"]).error(&["FORBIDDEN"]);
    User::on(&daemon, wire).run(&["guest", "alice"]).error(&["NAME_TAKEN"]);

    assert_eq!(visitor.ok(&["logout"]).stdout, "Logged out visitor.\n");
    visitor.run(&["send", "lobby", "again"]).error(&["not logged in to ", "confab guest NAME"]);

    let out = alice.ok(&["logout"]);
    assert_eq!(out.stdout, "Logged out alice.\n");
    assert_eq!(out.stderr, "", "{out}");
    assert!(alice.profile().get("login").is_none(), "{}", alice.profile());
    alice.run(&["rooms"]).error(&["not logged in to ", "confab login USER"]);
    alice.run(&["logout"]).error(&["not logged in to "]);

    alice.run_with_stdin(&["login", "alice", "--password-stdin"], &format!("{PASSWORD}\n")).success();
    let rooms = alice.ok(&["rooms"]);
    assert_eq!(row(&rooms.stdout, "#lobby")[1], "public", "{rooms}");
    assert_eq!(row(&rooms.stdout, "#vault")[1], "private", "{rooms}");
    daemon.assert_serving();
}

/// QUIC without `--fingerprint`: the first connection pins the certificate
/// and says so; a server with another certificate on the same address is
/// refused until the user passes `--fingerprint`.
#[test]
fn trust_on_first_use() {
    let mut first = Daemon::start();
    let carol = User::new(first.quic_url(), None);
    let address = format!("127.0.0.1:{}", first.quic.port());

    let registered = carol.register("carol");
    assert_eq!(
        registered.stderr,
        format!(
            "confab: trusting {address} on first use; its certificate fingerprint (SHA-256) is {} \
             (compare it with the one confabd printed at start)\n",
            first.fingerprint
        ),
        "{registered}"
    );
    assert_eq!(carol.profile()["known_fingerprints"][&address], first.fingerprint.as_str());
    let quiet = carol.ok(&["rooms"]);
    assert_eq!(quiet.stderr, "", "only the first use is announced:\n{quiet}");
    first.assert_serving();

    // A new data directory (so a new certificate) on the same QUIC port.
    let status = first.stop();
    assert!(status.success(), "confabd exited with {status}");
    let mut second = Daemon::start_with(DaemonSpec { quic_port: Some(first.quic.port()), ..Default::default() });
    assert_ne!(second.fingerprint, first.fingerprint);
    let refused = carol.run(&["rooms"]);
    let line = refused.error(&["has changed", &first.fingerprint, &format!("--fingerprint {}", second.fingerprint)]);
    assert!(line.contains(&address), "{line}");
    assert_eq!(carol.profile()["known_fingerprints"][&address], first.fingerprint.as_str(), "still pinned");
    carol.run(&["--fingerprint", &first.fingerprint, "rooms"]).error(&["as given with --fingerprint"]);
    second.assert_serving();

    // Accepting the new certificate: a new server, so a new account.
    let password = format!("{PASSWORD}\n");
    let fingerprint = second.fingerprint.clone();
    carol
        .run_with_stdin(&["--fingerprint", &fingerprint, "register", "carol", "--password-stdin"], &password)
        .success();
    assert_eq!(carol.profile()["known_fingerprints"][&address], second.fingerprint.as_str());
    let rooms = carol.ok(&["rooms"]);
    assert_eq!((rooms.stdout.as_str(), rooms.stderr.as_str()), ("No rooms.\n", ""), "{rooms}");
}

/// With one-second access tokens, every command refreshes; the rotated
/// refresh token must be kept, or the next refresh is refused.
#[test]
fn refreshed_tokens_are_kept_in_the_profile() {
    let mut daemon = Daemon::start_with(DaemonSpec { access_token_ttl_secs: Some(1), ..Default::default() });
    let alice = User::on(&daemon, Wire::Ws);
    alice.register("alice");
    alice.ok(&["create", "general"]);
    for round in 0..2 {
        let before = alice.profile()["login"].clone();
        wait_until_expired(&before);
        alice.ok(&["send", "general", &format!("round {round}")]);
        let after = alice.profile()["login"].clone();
        assert_ne!(after["access_token"], before["access_token"], "round {round}: not refreshed");
        assert_ne!(after["refresh_token"], before["refresh_token"], "round {round}: the refresh token did not rotate");
    }
    let history = alice.ok(&["history", "general", "--limit", "2"]);
    assert!(history.stdout.contains("<alice> round 0\n"), "{history}");
    assert!(history.stdout.ends_with("<alice> round 1\n"), "{history}");
    daemon.assert_serving();
}

/// `history` without `--limit` asks for no more than the server's largest
/// page.
#[test]
fn history_pages_fit_the_server() {
    let mut daemon = Daemon::start_with(DaemonSpec {
        extra_config: "[limits]\nmax_history_page = 5\n".into(),
        ..Default::default()
    });
    let alice = User::on(&daemon, Wire::Ws);
    alice.register("alice");
    alice.ok(&["create", "general"]);
    for n in 1..=6 {
        alice.ok(&["send", "general", &format!("message {n}")]);
    }
    let page = alice.ok(&["history", "general"]);
    assert_eq!(page.lines().len(), 5, "{page}");
    assert!(page.stdout.ends_with("<alice> message 6\n"), "{page}");
    assert!(page.stderr.starts_with("confab: more history: --before "), "{page}");
    assert_eq!(alice.ok(&["--json", "history", "general", "--limit", "0"]).json().len(), 5);
    alice.run(&["history", "general", "--limit", "6"]).error(&["INVALID_ARGUMENT", "limit"]);
    daemon.assert_serving();
}

/// Sleeps until the stored access token has certainly expired (JWT `exp`
/// has a resolution of one second).
fn wait_until_expired(login: &Value) {
    let expires_ms = login["access_expires_at_ms"].as_u64().expect("access_expires_at_ms");
    let expired_ms = (expires_ms / 1000 + 1) * 1000 + 100;
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    assert!(expired_ms <= now_ms + 3_000, "the access token lives longer than the configured second");
    std::thread::sleep(Duration::from_millis(expired_ms.saturating_sub(now_ms)));
}
