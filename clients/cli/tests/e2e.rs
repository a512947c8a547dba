//! End-to-end tests of the `confab` binary against a real `confabd`
//! process, over `ws://` and `quic://`: the README tour, `--json` output
//! and history paging, direct conversations (`@user`), `tail` (live, across
//! a daemon restart, ended by a logout), errors and exit codes, guests and
//! logout, trust on first use, token refresh kept in the profile, and the
//! conversation features: edits, deletions, reactions, replies, threads,
//! read markers, files, profiles, presence, search and typing; room
//! settings (topic, avatar, archiving), groups and notification levels.

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
    edits_reactions_replies_and_threads,
    permissions_are_refused_clearly,
    read_markers_and_unread_counts,
    files_round_trip,
    profiles_presence_and_search,
    tail_shows_conversation_events,
    room_settings_and_archiving,
    groups_and_notification_levels,
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
        ["ROOM", "KIND", "MEMBERS", "MEMBERSHIP", "UNREAD", "MENTIONS", "ID", "TOPIC"]
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
    // A transfer, which presents the token by itself, renews it first.
    let file = alice.dir().join("note.txt");
    std::fs::write(&file, "short-lived tokens\n").unwrap();
    let uploaded = alice.ok(&["--json", "upload", "general", &file.display().to_string()]).json_one();
    let copy = alice.dir().join("copy.txt");
    let file_id = uploaded["file"]["file_id"].as_str().expect("file_id");
    alice.ok(&["download", file_id, "-o", &copy.display().to_string()]);
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), "short-lived tokens\n");
    alice.ok(&["rooms"]);
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

/// The seq of a `--json` result line.
#[track_caller]
fn json_seq(value: &Value) -> u64 {
    value["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {value}"))
}

/// The `history` line of the event with sequence number `seq`.
#[track_caller]
fn line_of(history: &str, seq: u64) -> String {
    let tag = format!(" #{seq}] ");
    history.lines().find(|line| line.contains(&tag)).unwrap_or_else(|| panic!("no #{seq} in:\n{history}")).to_owned()
}

fn edits_reactions_replies_and_threads(wire: Wire) {
    let mut daemon = Daemon::start();
    let alice = User::on(&daemon, wire);
    let bob = User::on(&daemon, wire);
    alice.register("alice");
    alice.ok(&["create", "general"]);
    bob.register("bob");
    bob.ok(&["join", "general"]);

    let hello = json_seq(&alice.ok(&["--json", "send", "general", "helo", "@bob"]).json_one());
    // History shows sequence numbers, which the new commands take.
    let history = bob.ok(&["history", "general"]);
    assert!(line_of(&history.stdout, hello).ends_with("#general <alice> helo @bob"), "{history}");

    // Edit: the log gets an edit event; the message shows its new text.
    let edited = alice.ok(&["edit", "general", &hello.to_string(), "hello", "@bob"]);
    assert_eq!(edited.stdout, format!("Edited #{hello} in #general.\n"), "{edited}");
    let edit = alice.ok(&["--json", "edit", "general", &hello.to_string(), "hello @bob!"]).json_one();
    assert_eq!((edit["action"].as_str(), edit["target_seq"].as_u64()), (Some("edited"), Some(hello)), "{edit}");
    assert!(json_seq(&edit) > hello, "{edit}");

    // Replies quote their target; reactions are a set per user.
    let reply = bob.ok(&["reply", "general", &hello.to_string(), "hi", "alice"]);
    let reply_seq = sent_seq(reply.stdout.trim_end());
    let reacted = bob.ok(&["react", "general", &hello.to_string(), "👍"]);
    assert_eq!(reacted.stdout, format!("Reacted 👍 to #{hello} in #general.\n"), "{reacted}");
    let again = bob.ok(&["--json", "react", "general", &hello.to_string(), "👍"]).json_one();
    assert_eq!((again["duplicate"].as_bool(), &again["seq"]), (Some(true), &Value::Null), "{again}");
    alice.ok(&["react", "general", &hello.to_string(), "🎉"]);
    let removed = alice.ok(&["react", "general", &hello.to_string(), "🎉", "--remove"]);
    assert_eq!(removed.stdout, format!("Took back 🎉 from #{hello} in #general.\n"), "{removed}");

    // A thread under the first message.
    let in_thread = bob.ok(&["thread", "general", &hello.to_string(), "a", "side", "note"]);
    let thread_seq = sent_seq(in_thread.stdout.trim_end());
    let thread = alice.ok(&["thread", "general", &hello.to_string()]);
    let lines = thread.lines();
    assert_eq!(lines.len(), 2, "the root, then its thread:\n{thread}");
    assert!(lines[0].contains(&format!(" #{hello}] #general <alice> hello @bob!")), "{thread}");
    assert!(lines[1].ends_with(&format!("#general <bob> (in thread #{hello}) a side note")), "{thread}");
    let thread = alice.ok(&["--json", "thread", "general", &hello.to_string()]).json();
    assert_eq!(thread[1]["thread_root_seq"], hello, "{thread:?}");

    // History: the message in its current state, then the events.
    let history = alice.ok(&["history", "general"]);
    let first = line_of(&history.stdout, hello);
    assert!(first.contains("<alice> hello @bob! (edited) [👍 1] [thread: 1 reply, last #"), "{first}");
    assert!(line_of(&history.stdout, json_seq(&edit)).ends_with(&format!("* alice edited #{hello}: hello @bob!")));
    let answer = line_of(&history.stdout, reply_seq);
    assert!(answer.ends_with(&format!("<bob> (reply to alice #{hello}: \"hello @bob!\") hi alice")), "{answer}");
    assert!(history.stdout.contains(&format!("* bob reacted 👍 to #{hello}\n")), "{history}");
    assert!(history.stdout.contains(&format!("* alice took back 🎉 from #{hello}\n")), "{history}");
    assert!(line_of(&history.stdout, thread_seq).contains("(in thread #"), "{history}");
    let events = alice.ok(&["--json", "history", "general"]).json();
    let root = events.iter().find(|e| e["seq"] == hello).expect("the root");
    assert_eq!(root["text"], "hello @bob!");
    assert_eq!(root["edited"], true);
    assert_eq!(root["mentions"], serde_json::json!(["bob"]), "{root}");
    assert_eq!(root["reactions"], serde_json::json!([{ "emoji": "👍", "count": 1, "users": ["bob"] }]));
    assert_eq!(root["thread"]["reply_count"], 1, "{root}");
    let answer = events.iter().find(|e| e["seq"] == reply_seq).expect("the reply");
    assert_eq!(answer["reply_to"]["quote"], "hello @bob!", "{answer}");

    // A place, with or without words.
    let place = alice.ok(&["send", "general", "--location", "48.8584,2.2945", "--label", "Tour Eiffel", "here"]);
    let place = sent_seq(place.stdout.trim_end());
    let bare = sent_seq(alice.ok(&["send", "general", "--location", "-33.8568,151.2153"]).stdout.trim_end());
    let history = bob.ok(&["history", "general"]);
    assert!(line_of(&history.stdout, place).ends_with("<alice> here [location Tour Eiffel 48.85840, 2.29450]"));
    assert!(line_of(&history.stdout, bare).ends_with("<alice> [location -33.85680, 151.21530]"), "{history}");
    let far = alice.run(&["send", "general", "--location", "91,0", "off the map"]);
    far.error(&["INVALID_ARGUMENT", "latitude"]);

    // Deleting: the text is gone, the quote of the reply too.
    let deleted = alice.ok(&["delete", "general", &hello.to_string()]);
    assert_eq!(deleted.stdout, format!("Deleted #{hello} in #general.\n"), "{deleted}");
    let history = bob.ok(&["history", "general"]);
    assert!(line_of(&history.stdout, hello).ends_with("<alice> (message deleted by alice)"), "{history}");
    assert!(!history.stdout.contains("hello @bob!"), "the text is erased, edits included:\n{history}");
    let answer = line_of(&history.stdout, reply_seq);
    assert!(answer.ends_with(&format!("<bob> (reply to alice #{hello}: deleted) hi alice")), "{answer}");
    assert!(history.stdout.contains(&format!("* alice deleted #{hello}\n")), "{history}");
    daemon.assert_serving();
}

fn permissions_are_refused_clearly(wire: Wire) {
    let mut daemon = Daemon::start();
    let alice = User::on(&daemon, wire);
    let bob = User::on(&daemon, wire);
    alice.register("alice");
    alice.ok(&["create", "general"]);
    bob.register("bob");
    bob.ok(&["join", "general"]);
    let mine = sent_seq(alice.ok(&["send", "general", "mine"]).stdout.trim_end()).to_string();

    bob.run(&["edit", "general", &mine, "ours"]).error(&["FORBIDDEN", "only the author"]);
    bob.run(&["delete", "general", &mine]).error(&["FORBIDDEN"]);
    alice.run(&["edit", "general", "999", "x"]).error(&["MESSAGE_NOT_FOUND", "no event #999"]);
    // With --json, the refusal is one object naming the code.
    let refused = alice.run(&["--json", "edit", "general", "999", "x"]).failure(1);
    let error: Value = serde_json::from_str(refused.stderr.trim_end()).expect("a JSON error");
    assert_eq!(error["error"], "MESSAGE_NOT_FOUND", "{refused}");
    assert!(error["message"].as_str().is_some_and(|m| m.contains("#999")), "{refused}");
    alice.run(&["react", "general", &mine, "not an emoji"]).error(&["INVALID_ARGUMENT", "emoji"]);
    alice.run(&["reply", "general", "999", "to nothing"]).error(&["MESSAGE_NOT_FOUND"]);
    alice.run(&["edit", "nowhere", "1", "x"]).error(&["ROOM_NOT_FOUND"]);
    // Usage errors: status 2.
    for args in [
        &["edit", "general", "one", "x"][..],
        &["react", "general", "1"],
        &["presence", "busy"],
        &["reply", "general", "0", "sequence numbers start at 1"],
        &["thread", "general", "0", "x"],
    ] {
        let outcome = alice.run(args).failure(2);
        assert!(outcome.stderr.starts_with("error: "), "{outcome}");
    }

    // A private room's messages are out of reach for non-members.
    alice.ok(&["create", "vault", "--private"]);
    let secret = sent_seq(alice.ok(&["send", "vault", "secret"]).stdout.trim_end()).to_string();
    bob.run(&["react", "vault", &secret, "👍"]).error(&["ROOM_NOT_FOUND"]);
    bob.run(&["thread", "vault", &secret]).error(&["ROOM_NOT_FOUND"]);
    bob.run(&["read", "vault"]).error(&["ROOM_NOT_FOUND"]);
    // The daemon keeps serving; the message is untouched.
    let history = alice.ok(&["history", "general"]);
    assert!(line_of(&history.stdout, mine.parse().unwrap()).ends_with("<alice> mine"), "{history}");
    daemon.assert_serving();
}

fn read_markers_and_unread_counts(wire: Wire) {
    let mut daemon = Daemon::start();
    let alice = User::on(&daemon, wire);
    let bob = User::on(&daemon, wire);
    alice.register("alice");
    alice.ok(&["create", "general"]);
    let news = alice.ok(&["--json", "create", "news", "--topic", "what  happened today"]).json_one();
    assert_eq!(news["topic"], "what  happened today", "{news}");
    bob.register("bob");
    bob.ok(&["join", "general"]);
    bob.ok(&["join", "news"]);
    // Joining: the backlog before is not unread.
    let rooms = bob.ok(&["rooms"]);
    assert_eq!(row(&rooms.stdout, "#general")[4..6], ["0", "0"], "{rooms}");
    let news = rooms.lines().into_iter().find(|l| l.starts_with("#news")).expect("#news");
    assert!(news.ends_with("  what  happened today"), "the topic is the last column:\n{rooms}");
    let found = bob.ok(&["--json", "search", "rooms", "HAPPENED"]).json_one();
    assert_eq!(found["room"], "news", "{found}");

    alice.ok(&["send", "general", "one"]);
    let two = sent_seq(alice.ok(&["send", "general", "two", "@bob"]).stdout.trim_end());
    alice.ok(&["send", "general", "three"]);
    let rooms = bob.ok(&["rooms"]);
    assert_eq!(row(&rooms.stdout, "#general")[4..6], ["3", "1"], "{rooms}");
    // Alice's own messages are never unread for her.
    assert_eq!(row(&alice.ok(&["rooms"]).stdout, "#general")[4..6], ["0", "0"]);

    let read = bob.ok(&["read", "general", &two.to_string()]);
    assert_eq!(read.stdout, format!("Read #general up to #{two} (1 unread, 0 mentions).\n"), "{read}");
    let read = bob.ok(&["--json", "read", "general"]).json_one();
    assert_eq!((read["unread"].as_u64(), read["mentions"].as_u64()), (Some(0), Some(0)), "{read}");
    assert!(read["read_seq"].as_u64().unwrap() > two, "{read}");
    let rooms = bob.ok(&["--json", "rooms"]).json();
    let general = rooms.iter().find(|r| r["room"] == "general").expect("general");
    assert_eq!((general["unread"].as_u64(), general["read_seq"].as_u64()), (Some(0), read["read_seq"].as_u64()));
    // A marker never moves back.
    let back = bob.ok(&["--json", "read", "general", "1"]).json_one();
    assert_eq!(back["read_seq"], read["read_seq"], "{back}");
    bob.run(&["read", "general", "9999"]).error(&["INVALID_ARGUMENT"]);

    // Typing is said and unsaid; nothing is stored.
    assert_eq!(bob.ok(&["typing", "general"]).stdout, "Typing in #general.\n");
    assert_eq!(bob.ok(&["typing", "general", "--stop"]).stdout, "Stopped typing in #general.\n");
    bob.run(&["typing", "nowhere"]).error(&["ROOM_NOT_FOUND"]);
    daemon.assert_serving();
}

/// A file of `len` bytes that is not text (so not sniffed as such).
fn binary_file(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7919) % 251) as u8).collect()
}

fn files_round_trip(wire: Wire) {
    let mut daemon = Daemon::start();
    let alice = User::on(&daemon, wire);
    let bob = User::on(&daemon, wire);
    let carol = User::on(&daemon, wire);
    alice.register("alice");
    alice.ok(&["create", "vault", "--private"]);
    bob.register("bob");
    carol.register("carol");
    alice.ok(&["invite", "vault", "bob"]);
    bob.ok(&["join", "vault"]);

    // Several chunks' worth, with a name that needs encoding.
    let bytes = binary_file(300 * 1024 + 17);
    let source = alice.dir().join("report 2026 (final).bin");
    std::fs::write(&source, &bytes).unwrap();
    let source_arg = source.display().to_string();
    let uploaded = alice.ok(&["--json", "upload", "vault", &source_arg, "--text", "the report"]).json_one();
    assert_eq!(uploaded["action"], "uploaded");
    let file = &uploaded["file"];
    assert_eq!(file["name"], "report 2026 (final).bin", "{uploaded}");
    assert_eq!(file["size"], bytes.len() as u64, "{uploaded}");
    assert_eq!(file["content_type"], "application/octet-stream", "{uploaded}");
    let file_id = file["file_id"].as_str().expect("file_id").to_owned();
    assert!(file_id.len() == 32 && file_id.bytes().all(|b| b.is_ascii_hexdigit()), "{file_id}");

    // The message carries it; members see it in the history.
    let history = bob.ok(&["history", "vault"]);
    let line = line_of(&history.stdout, json_seq(&uploaded));
    assert!(
        line.ends_with(&format!(
            "<alice> the report [file {file_id}: report 2026 (final).bin, application/octet-stream, 300.0 KiB]"
        )),
        "{line}"
    );

    // Downloading: into a directory (under the file's name), to a path,
    // and to standard output.
    let into = bob.dir().join("downloads");
    std::fs::create_dir_all(&into).unwrap();
    let done = bob.ok(&["download", &file_id, "-o", &into.display().to_string()]);
    let landed = into.join("report 2026 (final).bin");
    assert_eq!(done.stdout, format!("Downloaded 300.0 KiB to {}.\n", landed.display()), "{done}");
    assert_eq!(std::fs::read(&landed).unwrap(), bytes);
    let path = bob.dir().join("copy.bin");
    let done = bob.ok(&["--json", "download", &file_id, "-o", &path.display().to_string()]).json_one();
    assert_eq!((done["size"].as_u64(), done["action"].as_str()), (Some(bytes.len() as u64), Some("downloaded")));
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    let piped = bob.run(&["download", &file_id, "-o", "-"]).success();
    assert_eq!(piped.stdout.len(), String::from_utf8_lossy(&bytes).len(), "the bytes went to standard output");
    // Not over an existing file unless told where.
    bob.run(&["download", &file_id, "-o", &into.display().to_string()]).error(&["exists already", "-o PATH"]);

    // Who may not: someone outside the room, a guest uploading, an unknown id.
    carol.run(&["download", &file_id, "-o", &carol.dir().join("x").display().to_string()]).error(&["FILE_NOT_FOUND"]);
    assert!(!carol.dir().join("x").exists() && !carol.dir().join("x.part").exists());
    carol.run(&["download", &"0".repeat(32)]).error(&["FILE_NOT_FOUND"]);
    let visitor = User::on(&daemon, wire);
    visitor.ok(&["guest", "visitor"]);
    visitor.run(&["upload", "lobby", &source_arg]).error(&["FORBIDDEN"]);
    alice.run(&["upload", "vault", &alice.dir().join("missing.bin").display().to_string()]).error(&["missing.bin"]);

    // Over the size limit: refused, and the daemon goes on.
    let mut small = Daemon::start_with(DaemonSpec {
        extra_config: "[files]\nmax_file_bytes = 1024\n".into(),
        ..Default::default()
    });
    let dave = User::on(&small, wire);
    dave.register("dave");
    dave.ok(&["create", "room"]);
    dave.run(&["upload", "room", &source_arg]).error(&["FILE_TOO_LARGE"]);
    let tiny = dave.dir().join("tiny.txt");
    std::fs::write(&tiny, "just text\n").unwrap();
    let sent = dave.ok(&["--json", "upload", "room", &tiny.display().to_string()]).json_one();
    assert_eq!(sent["file"]["content_type"], "text/plain; charset=utf-8", "{sent}");
    small.assert_serving();
    daemon.assert_serving();
}

/// The smallest PNG: one transparent pixel.
const ONE_PIXEL_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

fn profiles_presence_and_search(wire: Wire) {
    let mut daemon = Daemon::start();
    let alice = User::on(&daemon, wire);
    let bob = User::on(&daemon, wire);
    alice.register("alice");
    bob.register("bob");
    User::on(&daemon, wire).register("albert");

    let mine = alice.ok(&["--json", "profile", "set", "--display-name", "Alice A.", "--status", "reading"]).json_one();
    assert_eq!((mine["display_name"].as_str(), mine["status"].as_str()), (Some("Alice A."), Some("reading")));
    assert_eq!(mine["share_receipts"], true, "{mine}");
    let mine = alice.ok(&["--json", "profile", "set", "--share-receipts", "false"]).json_one();
    assert_eq!((mine["share_receipts"].as_bool(), mine["display_name"].as_str()), (Some(false), Some("Alice A.")));
    let avatar = alice.dir().join("me.png");
    std::fs::write(&avatar, ONE_PIXEL_PNG).unwrap();
    let mine = alice.ok(&["--json", "profile", "set", "--avatar", &avatar.display().to_string()]).json_one();
    let avatar_id = mine["avatar_file_id"].as_str().expect("an avatar").to_owned();
    // An avatar is public: anyone logged in may fetch it.
    let fetched = bob.dir().join("alice.png");
    bob.ok(&["download", &avatar_id, "-o", &fetched.display().to_string()]);
    assert_eq!(std::fs::read(&fetched).unwrap(), ONE_PIXEL_PNG);

    // As others see it.
    let seen = bob.ok(&["profile", "alice"]);
    let lines = seen.lines();
    assert_eq!(lines[0], "Alice A. (alice)", "{seen}");
    assert!(lines.contains(&"  status: reading"), "{seen}");
    assert!(lines.contains(&"  presence: offline") || lines[1].starts_with("  presence: offline"), "{seen}");
    let seen = bob.ok(&["--json", "profile", "alice"]).json_one();
    assert_eq!(seen["share_receipts"], false, "{seen}");
    assert_eq!(bob.ok(&["--json", "profile"]).json_one()["user"], "bob");
    bob.run(&["profile", "nobody"]).error(&["USER_NOT_FOUND"]);

    // Presence.
    assert_eq!(
        alice.ok(&["presence", "away", "--status", "lunch"]).stdout,
        "You are away (shown while one of your clients follows the rooms, such as `tail`).\n"
    );
    let seen = bob.ok(&["--json", "profile", "alice"]).json_one();
    assert_eq!(seen["status"], "lunch", "{seen}");
    assert_eq!(
        alice.ok(&["presence", "online", "--this-device"]).stdout,
        "You are online on this device (shown while one of your clients follows the rooms, such as `tail`).\n"
    );

    // Search.
    let found = bob.ok(&["search", "users", "AL"]);
    let names: Vec<&str> = found.lines().iter().skip(1).map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(names, ["albert", "alice"], "{found}");
    let found = bob.ok(&["--json", "search", "users", "al", "--limit", "1"]).json();
    assert_eq!(found.len(), 1);
    assert_eq!(bob.ok(&["search", "users", "zz"]).stdout, "No users.\n");
    bob.run(&["search", "users", "al", "--limit", "51"]).error(&["INVALID_ARGUMENT"]);
    alice.ok(&["create", "rust-lang"]);
    alice.ok(&["create", "cooking"]);
    let rooms = bob.ok(&["--json", "search", "rooms", "RUST"]).json();
    assert_eq!(rooms.len(), 1, "{rooms:?}");
    assert_eq!(rooms[0]["room"], "rust-lang");

    // Guests change their status, nothing else.
    let visitor = User::on(&daemon, wire);
    visitor.ok(&["guest", "visitor"]);
    visitor.ok(&["profile", "set", "--status", "just looking"]);
    visitor.run(&["profile", "set", "--display-name", "V"]).error(&["FORBIDDEN"]);
    // A guest exists while connected: its own session sees its profile.
    let seen = visitor.ok(&["--json", "profile"]).json_one();
    assert_eq!((seen["guest"].as_bool(), seen["status"].as_str()), (Some(true), Some("just looking")));
    daemon.assert_serving();
}

fn tail_shows_conversation_events(wire: Wire) {
    let mut daemon = Daemon::start();
    let alice = User::on(&daemon, wire);
    let bob = User::on(&daemon, wire);
    alice.register("alice");
    alice.ok(&["create", "general"]);
    bob.register("bob");
    bob.ok(&["join", "general"]);
    let first = sent_seq(alice.ok(&["send", "general", "first"]).stdout.trim_end());

    let mut tail = bob.spawn(&["tail", "general"]);
    tail.expect_stderr("announcing the tail", |l| l.starts_with("confab: showing new events in #general"));
    alice.ok(&["edit", "general", &first.to_string(), "first!"]);
    tail.expect_stdout("the edit", |l| l.ends_with(&format!("* alice edited #{first}: first!")));
    alice.ok(&["react", "general", &first.to_string(), "🎉"]);
    tail.expect_stdout("the reaction", |l| l.ends_with(&format!("* alice reacted 🎉 to #{first}")));
    alice.ok(&["reply", "general", &first.to_string(), "me", "again"]);
    tail.expect_stdout("the reply", |l| {
        l.ends_with(&format!("<alice> (reply to alice #{first}: \"first!\") me again"))
    });
    alice.ok(&["delete", "general", &first.to_string()]);
    tail.expect_stdout("the deletion", |l| l.ends_with(&format!("* alice deleted #{first}")));
    alice.ok(&["typing", "general"]);
    tail.expect_stderr("alice typing", |l| l == "confab: alice is typing in #general");
    alice.ok(&["typing", "general", "--stop"]);
    tail.expect_stderr("alice stopping", |l| l == "confab: alice stopped typing in #general");
    tail.interrupt();
    assert!(tail.wait().success(), "{:?}", tail.stderr_seen);
    daemon.assert_serving();
}

fn room_settings_and_archiving(wire: Wire) {
    let mut daemon = Daemon::start();
    let alice = User::on(&daemon, wire);
    let bob = User::on(&daemon, wire);
    alice.register("alice");
    alice.ok(&["create", "general"]);
    bob.register("bob");
    bob.ok(&["join", "general"]);

    // The owner sets the topic; the room is printed back.
    let set = alice.ok(&["room", "set", "general", "--topic", "release day"]);
    let lines = set.lines();
    assert!(lines[0].starts_with("Updated #general (room "), "{set}");
    assert!(lines[0].ends_with(", public, 2 members)."), "{set}");
    assert_eq!(lines[1..], ["  topic: release day"], "{set}");
    let room = alice.ok(&["--json", "room", "set", "#general", "--topic", "release day!"]).json_one();
    assert_eq!((room["action"].as_str(), room["topic"].as_str()), (Some("updated"), Some("release day!")), "{room}");
    assert_eq!((room["archived"].as_bool(), room["role"].as_str()), (Some(false), Some("owner")), "{room}");

    // A member may not change the topic, nor archive the room.
    bob.run(&["room", "set", "general", "--topic", "mine now"]).error(&["FORBIDDEN", "moderators", "topic"]);
    bob.run(&["room", "set", "general", "--archive"]).error(&["FORBIDDEN", "admins"]);
    alice.run(&["room", "set", "nowhere", "--topic", "x"]).error(&["ROOM_NOT_FOUND"]);
    alice.run(&["room", "set", "general", "--topic", &"x".repeat(513)]).error(&["INVALID_ARGUMENT"]);
    // Usage errors: something to change, and not both ways at once.
    alice.run(&["room", "set", "general"]).failure(2);
    alice.run(&["room", "set", "general", "--archive", "--unarchive"]).failure(2);

    // An avatar is uploaded, then set; --no-avatar removes it.
    let image = alice.dir().join("room.png");
    std::fs::write(&image, ONE_PIXEL_PNG).unwrap();
    let room = alice.ok(&["--json", "room", "set", "general", "--avatar", &image.display().to_string()]).json_one();
    let avatar_id = room["avatar_file_id"].as_str().expect("an avatar").to_owned();
    let fetched = bob.dir().join("room.png");
    bob.ok(&["download", &avatar_id, "-o", &fetched.display().to_string()]);
    assert_eq!(std::fs::read(&fetched).unwrap(), ONE_PIXEL_PNG);
    let room = alice.ok(&["--json", "room", "set", "general", "--no-avatar"]).json_one();
    assert_eq!(room["avatar_file_id"], Value::Null, "{room}");

    // Archived: read-only for everyone, owner included.
    let archived = alice.ok(&["room", "set", "general", "--archive"]);
    assert!(archived.lines().contains(&"  archived: read-only until unarchived"), "{archived}");
    bob.run(&["send", "general", "anyone", "there?"]).error(&["ROOM_ARCHIVED", "archived"]);
    alice.run(&["send", "general", "me?"]).error(&["ROOM_ARCHIVED"]);
    let rooms = bob.ok(&["rooms"]);
    assert_eq!(row(&rooms.stdout, "#general").last().map(String::as_str), Some("(archived) release day!"), "{rooms}");
    let mine = bob.ok(&["--json", "rooms"]).json_one();
    assert_eq!(mine["archived"], true, "{mine}");
    // Still readable; the changes are in the log.
    let history = bob.ok(&["history", "general"]);
    assert!(history.stdout.contains("* alice set the topic to \"release day\"\n"), "{history}");
    assert!(history.stdout.contains("* alice changed the room's avatar\n"), "{history}");
    assert!(history.stdout.ends_with("* alice archived the room\n"), "{history}");

    // Unarchived: sending works again.
    let room = alice.ok(&["--json", "room", "set", "general", "--unarchive"]).json_one();
    assert_eq!(room["archived"], false, "{room}");
    let sent = bob.ok(&["send", "general", "back", "again"]);
    assert!(sent.stdout.starts_with("Sent to #general (seq "), "{sent}");

    // Renaming: the room answers to its new name only; names stay unique.
    alice.ok(&["create", "taken"]);
    alice.run(&["room", "set", "general", "--name", "taken"]).error(&["NAME_TAKEN"]);
    let renamed = alice.ok(&["--json", "room", "set", "general", "--name", "lounge"]).json_one();
    assert_eq!(renamed["room"], "lounge", "{renamed}");
    let history = bob.ok(&["history", "lounge", "--limit", "2"]);
    assert!(history.stdout.ends_with("* alice renamed the room to #lounge\n"), "{history}");
    bob.run(&["history", "general"]).error(&["ROOM_NOT_FOUND"]);
    // A direct conversation cannot be archived.
    alice.ok(&["dm", "bob"]);
    alice.run(&["room", "set", "@bob", "--archive"]).error(&["FORBIDDEN", "direct"]);
    daemon.assert_serving();
}

fn groups_and_notification_levels(wire: Wire) {
    let mut daemon = Daemon::start();
    let alice = User::on(&daemon, wire);
    let bob = User::on(&daemon, wire);
    let carol = User::on(&daemon, wire);
    alice.register("alice");
    bob.register("bob");
    carol.register("carol");

    // A named group: its members are in at once, no invitation.
    let team =
        alice.ok(&["--json", "create", "team", "--private", "--member", "bob,carol", "--topic", "us"]).json_one();
    assert_eq!((team["action"].as_str(), team["kind"].as_str()), (Some("created"), Some("private")), "{team}");
    assert_eq!((team["members"].as_u64(), team["topic"].as_str()), (Some(3), Some("us")), "{team}");
    let rooms = carol.ok(&["rooms"]);
    assert_eq!(row(&rooms.stdout, "#team")[1..4], ["private", "3", "joined"], "{rooms}");
    carol.ok(&["send", "team", "hi", "all"]);
    let members = bob.ok(&["members", "team"]);
    assert_eq!(row(&members.stdout, "carol")[1..], ["member", "joined"], "{members}");

    // An unnamed group is named by its id.
    let created = alice.ok(&["create", "--private", "--member", "bob"]);
    let id = created
        .stdout
        .strip_prefix("Created #")
        .and_then(|rest| rest.split_once(' '))
        .map(|(id, _)| id.to_owned())
        .unwrap_or_else(|| panic!("{created}"));
    assert!(created.stdout.ends_with(&format!("(room {id}, private, 2 members).\n")), "{created}");
    let sent = bob.ok(&["send", &id, "just", "us"]);
    assert_eq!(sent.stdout, format!("Sent to #{id} (seq {}).\n", sent_seq(sent.stdout.trim_end())), "{sent}");
    let history = alice.ok(&["history", &format!("#{id}")]);
    assert!(history.stdout.ends_with(&format!("] #{id} <bob> just us\n")), "{history}");
    alice.run(&["create", "--private", "--member", "nobody"]).error(&["USER_NOT_FOUND"]);

    // Notification levels: chosen, shown by `rooms --json`, and back to the default.
    alice.ok(&["create", "general"]);
    let level = |user: &User, room: &str| {
        let rooms = user.ok(&["--json", "rooms"]).json();
        let found = rooms.iter().find(|r| r["room"] == room).unwrap_or_else(|| panic!("no {room} in {rooms:?}"));
        found["notifications"].as_str().expect("a level").to_owned()
    };
    assert_eq!(level(&alice, "general"), "default");
    let set = alice.ok(&["notify", "general", "all"]);
    assert_eq!(set.stdout, "Notifications for #general: every message.\n", "{set}");
    assert_eq!(level(&alice, "general"), "all");
    let set = alice.ok(&["--json", "notify", "#general", "none"]).json_one();
    assert_eq!((set["action"].as_str(), set["notifications"].as_str()), (Some("notify"), Some("none")), "{set}");
    assert_eq!(level(&alice, "general"), "none");
    let set = alice.ok(&["notify", "general", "mentions"]);
    assert_eq!(set.stdout, "Notifications for #general: only messages that mention you.\n", "{set}");
    assert_eq!(level(&alice, "general"), "mentions");
    let set = alice.ok(&["notify", "general", "default"]);
    assert_eq!(set.stdout, "Notifications for #general: the default (only messages that mention you).\n");
    assert_eq!(level(&alice, "general"), "default");
    // Per user: bob's level in the group is his own.
    bob.ok(&["notify", "team", "none"]);
    assert_eq!((level(&bob, "team"), level(&alice, "team")), ("none".to_owned(), "default".to_owned()));
    alice.ok(&["dm", "bob"]);
    let set = alice.ok(&["notify", "@bob", "default"]);
    assert_eq!(set.stdout, "Notifications for @bob: the default (every message).\n", "{set}");
    // Only for rooms one is in.
    carol.run(&["notify", "general", "all"]).error(&["NOT_A_MEMBER"]);
    carol.run(&["notify", "nowhere", "all"]).error(&["ROOM_NOT_FOUND"]);
    carol.run(&["notify", "general", "loud"]).failure(2);
    daemon.assert_serving();
}
