//! Wire and JSON compatibility of the `.proto` files against the committed
//! baseline `baseline/confab.v1.binpb`: v1 only grows. The checker compares
//! two descriptor sets; its own tests break a copy of the schema in memory,
//! one way at a time, and assert the complaint.
//!
//! `CONFAB_BLESS=1 cargo test -p confab-protocol --test compatibility`
//! rewrites the baseline to the current schema, and refuses to when the
//! current schema breaks it.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
};

use prost::Message as _;
use prost_types::{DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorSet};

/// A message with what the checker needs to know about where it lives.
struct MessageEntry<'a> {
    proto: &'a DescriptorProto,
    syntax: &'a str,
}

/// Every package, message and enum of a descriptor set, by full name
/// (`confab.v1.RoomEvent`, nested ones as `confab.v1.Outer.Inner`).
#[derive(Default)]
struct Schema<'a> {
    packages: BTreeSet<&'a str>,
    messages: BTreeMap<String, MessageEntry<'a>>,
    enums: BTreeMap<String, &'a EnumDescriptorProto>,
}

impl<'a> Schema<'a> {
    fn index(set: &'a FileDescriptorSet) -> Self {
        let mut schema = Schema::default();
        for file in &set.file {
            schema.packages.insert(file.package());
            // proto2 files may omit `syntax`; the empty string means proto2.
            let syntax = match file.syntax() {
                "" => "proto2",
                other => other,
            };
            for message in &file.message_type {
                schema.add_message(file.package(), message, syntax);
            }
            for enumeration in &file.enum_type {
                schema.enums.insert(qualify(file.package(), enumeration.name()), enumeration);
            }
        }
        schema
    }

    fn add_message(&mut self, scope: &str, message: &'a DescriptorProto, syntax: &'a str) {
        let name = qualify(scope, message.name());
        for nested in &message.nested_type {
            self.add_message(&name, nested, syntax);
        }
        for enumeration in &message.enum_type {
            self.enums.insert(qualify(&name, enumeration.name()), enumeration);
        }
        self.messages.insert(name, MessageEntry { proto: message, syntax });
    }
}

fn qualify(scope: &str, name: &str) -> String {
    if scope.is_empty() { name.to_owned() } else { format!("{scope}.{name}") }
}

/// The JSON name protoc derives when `json_name` is not recorded.
fn default_json_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn json_name(field: &FieldDescriptorProto) -> String {
    field.json_name.clone().unwrap_or_else(|| default_json_name(field.name()))
}

/// The index of the real oneof `field` belongs to; synthetic oneofs of
/// proto3 `optional` fields do not count.
fn real_oneof(field: &FieldDescriptorProto) -> Option<i32> {
    if field.proto3_optional() { None } else { field.oneof_index }
}

fn oneof_name(message: &DescriptorProto, index: i32) -> &str {
    usize::try_from(index).ok().and_then(|i| message.oneof_decl.get(i)).map(|o| o.name()).unwrap_or_default()
}

/// Everything in `current` that breaks wire or JSON compatibility with
/// `baseline`, one sentence per break. Empty means compatible.
fn breaking_changes(baseline: &FileDescriptorSet, current: &FileDescriptorSet) -> Vec<String> {
    let old = Schema::index(baseline);
    let new = Schema::index(current);
    let mut complaints = Vec::new();

    for package in old.packages.difference(&new.packages) {
        complaints.push(format!("package {package} was removed or renamed"));
    }
    for (name, old_message) in &old.messages {
        match new.messages.get(name) {
            None => complaints.push(format!("message {name} was removed or renamed")),
            Some(new_message) => compare_message(name, old_message, new_message, &mut complaints),
        }
    }
    for (name, old_enum) in &old.enums {
        match new.enums.get(name) {
            None => complaints.push(format!("enum {name} was removed or renamed")),
            Some(new_enum) => compare_enum(name, old_enum, new_enum, &mut complaints),
        }
    }
    complaints
}

fn compare_message(name: &str, old: &MessageEntry<'_>, new: &MessageEntry<'_>, complaints: &mut Vec<String>) {
    let (old_proto, new_proto) = (old.proto, new.proto);
    if old.syntax != new.syntax {
        complaints.push(format!(
            "message {name}: its file's syntax changed from {} to {}, which changes field presence",
            old.syntax, new.syntax
        ));
    }
    let new_by_name: BTreeMap<&str, &FieldDescriptorProto> = new_proto.field.iter().map(|f| (f.name(), f)).collect();
    let new_by_number: BTreeMap<i32, &FieldDescriptorProto> = new_proto.field.iter().map(|f| (f.number(), f)).collect();

    for old_field in &old_proto.field {
        let field = format!("{name}.{}", old_field.name());
        let number = old_field.number();
        let Some(new_field) = new_by_name.get(old_field.name()) else {
            if let Some(renamed) = new_by_number.get(&number) {
                complaints.push(format!(
                    "field {field} (number {number}) was renamed to {}; JSON names it {} instead of {}",
                    renamed.name(),
                    json_name(renamed),
                    json_name(old_field)
                ));
                continue;
            }
            let number_reserved = new_proto.reserved_range.iter().any(|r| r.start() <= number && number < r.end());
            let name_reserved = new_proto.reserved_name.iter().any(|n| n == old_field.name());
            if !(number_reserved && name_reserved) {
                let mut missing = Vec::new();
                if !number_reserved {
                    missing.push(format!("`reserved {number};`"));
                }
                if !name_reserved {
                    missing.push(format!("`reserved \"{}\";`", old_field.name()));
                }
                complaints
                    .push(format!("field {field} (number {number}) was removed without {}", missing.join(" and ")));
            }
            continue;
        };
        if new_field.number() != number {
            complaints.push(format!("field {field} changed number from {number} to {}", new_field.number()));
        }
        if new_field.r#type() != old_field.r#type() {
            complaints.push(format!(
                "field {field} changed type from {} to {}",
                old_field.r#type().as_str_name(),
                new_field.r#type().as_str_name()
            ));
        }
        if new_field.label() != old_field.label() {
            complaints.push(format!(
                "field {field} changed label from {} to {}",
                old_field.label().as_str_name(),
                new_field.label().as_str_name()
            ));
        }
        if new_field.type_name() != old_field.type_name() {
            complaints.push(format!(
                "field {field} changed type_name from {} to {}",
                old_field.type_name(),
                new_field.type_name()
            ));
        }
        if json_name(new_field) != json_name(old_field) {
            complaints.push(format!(
                "field {field} changed json_name from {} to {}",
                json_name(old_field),
                json_name(new_field)
            ));
        }
        match (real_oneof(old_field), real_oneof(new_field)) {
            (None, Some(index)) => {
                complaints.push(format!("field {field} moved into oneof {}", oneof_name(new_proto, index)))
            }
            (Some(index), None) => {
                complaints.push(format!("field {field} moved out of oneof {}", oneof_name(old_proto, index)))
            }
            _ => {}
        }
    }
    compare_oneof_groups(name, old_proto, new_proto, complaints);

    for range in &old_proto.reserved_range {
        let kept = new_proto.reserved_range.iter().any(|r| r.start() <= range.start() && range.end() <= r.end());
        if !kept {
            complaints.push(format!(
                "message {name}: reserved numbers {}..{} are no longer reserved",
                range.start(),
                range.end() - 1
            ));
        }
    }
    for reserved in &old_proto.reserved_name {
        if !new_proto.reserved_name.contains(reserved) {
            complaints.push(format!("message {name}: reserved name \"{reserved}\" is no longer reserved"));
        }
    }
}

/// Fields that stayed in a oneof but changed company: a oneof split in two,
/// or two merged. Renaming a oneof is harmless. Of the fields that leave one
/// group together, the largest part is taken to have stayed and the others
/// to have moved, so each move is reported once.
fn compare_oneof_groups(name: &str, old: &DescriptorProto, new: &DescriptorProto, complaints: &mut Vec<String>) {
    // (number, field name, old oneof, new oneof) of fields in a real oneof on both sides.
    let mut members = Vec::new();
    for old_field in &old.field {
        let Some(new_field) = new.field.iter().find(|f| f.name() == old_field.name()) else { continue };
        if let (Some(old_index), Some(new_index)) = (real_oneof(old_field), real_oneof(new_field)) {
            members.push((old_field.number(), old_field.name(), old_index, new_index));
        }
    }
    let mut moved = BTreeSet::new();
    for from_old_side in [true, false] {
        // Group by the oneof on one side, then by the oneof on the other.
        let mut groups: BTreeMap<i32, BTreeMap<i32, Vec<i32>>> = BTreeMap::new();
        for &(number, _, old_index, new_index) in &members {
            let (key, other) = if from_old_side { (old_index, new_index) } else { (new_index, old_index) };
            groups.entry(key).or_default().entry(other).or_default().push(number);
        }
        for parts in groups.values() {
            let Some((&stayed, _)) =
                parts.iter().max_by_key(|(_, numbers)| (numbers.len(), std::cmp::Reverse(numbers[0])))
            else {
                continue;
            };
            for (_, numbers) in parts.iter().filter(|(other, _)| **other != stayed) {
                for number in numbers {
                    moved.insert(*number);
                }
            }
        }
    }
    for (number, field_name, old_index, new_index) in members {
        if moved.contains(&number) {
            complaints.push(format!(
                "field {name}.{field_name} moved from oneof {} to oneof {}",
                oneof_name(old, old_index),
                oneof_name(new, new_index)
            ));
        }
    }
}

fn compare_enum(name: &str, old: &EnumDescriptorProto, new: &EnumDescriptorProto, complaints: &mut Vec<String>) {
    for old_value in &old.value {
        let value = format!("{name}.{}", old_value.name());
        let number = old_value.number();
        if let Some(new_value) = new.value.iter().find(|v| v.name() == old_value.name()) {
            if new_value.number() != number {
                complaints.push(format!("enum value {value} was renumbered from {number} to {}", new_value.number()));
            }
        } else if let Some(renamed) = new.value.iter().find(|v| v.number() == number) {
            complaints.push(format!(
                "enum value {value} ({number}) was renamed to {}; JSON carries enum values by name",
                renamed.name()
            ));
        } else {
            complaints.push(format!("enum value {value} ({number}) was removed"));
        }
    }
}

// ---------------------------------------------------------------------------
// The baseline.

fn blessing() -> bool {
    std::env::var_os("CONFAB_BLESS").is_some_and(|v| v == "1")
}

fn baseline_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("baseline/confab.v1.binpb")
}

/// The current schema, without comments and source positions (they change
/// nothing on the wire and would only churn the baseline).
fn current() -> FileDescriptorSet {
    let mut set = FileDescriptorSet::decode(confab_protocol::FILE_DESCRIPTOR_SET).expect("the crate's descriptor set");
    for file in &mut set.file {
        file.source_code_info = None;
    }
    set
}

#[test]
fn the_schema_is_compatible_with_the_baseline() {
    let path = baseline_path();
    let current = current();
    let baseline = match std::fs::read(&path) {
        Ok(bytes) => FileDescriptorSet::decode(bytes.as_slice()).expect("the baseline is a FileDescriptorSet"),
        Err(error) if blessing() && error.kind() == std::io::ErrorKind::NotFound => current.clone(),
        Err(error) => panic!("cannot read {}: {error}", path.display()),
    };
    let complaints = breaking_changes(&baseline, &current);
    assert!(
        complaints.is_empty(),
        "the .proto files break compatibility with baseline/confab.v1.binpb (v1 only grows; \
         CONFAB_BLESS cannot accept this):\n  {}",
        complaints.join("\n  ")
    );
    if blessing() {
        std::fs::create_dir_all(path.parent().expect("a parent directory")).expect("create baseline/");
        std::fs::write(&path, current.encode_to_vec()).expect("write the baseline");
    }
}

#[test]
fn the_baseline_is_the_v1_schema() {
    // While blessing, the test above may be rewriting the file, with the
    // current schema: check that instead of a half-written file.
    let baseline = if blessing() {
        current()
    } else {
        let bytes = std::fs::read(baseline_path()).expect("baseline/confab.v1.binpb exists");
        FileDescriptorSet::decode(bytes.as_slice()).expect("the baseline is a FileDescriptorSet")
    };
    let schema = Schema::index(&baseline);
    assert_eq!(schema.packages, BTreeSet::from(["confab.v1"]));
    assert!(schema.messages.contains_key("confab.v1.ClientFrame"));
    assert!(schema.messages.contains_key("confab.v1.ServerFrame"));
    assert!(schema.enums.contains_key("confab.v1.ErrorCode"));
}

// ---------------------------------------------------------------------------
// The checker catches each kind of break.

fn message_mut<'a>(set: &'a mut FileDescriptorSet, name: &str) -> &'a mut DescriptorProto {
    set.file
        .iter_mut()
        .flat_map(|f| f.message_type.iter_mut())
        .find(|m| m.name() == name)
        .unwrap_or_else(|| panic!("no message {name}"))
}

fn field_mut<'a>(set: &'a mut FileDescriptorSet, message: &str, field: &str) -> &'a mut FieldDescriptorProto {
    message_mut(set, message)
        .field
        .iter_mut()
        .find(|f| f.name() == field)
        .unwrap_or_else(|| panic!("no field {message}.{field}"))
}

fn enum_mut<'a>(set: &'a mut FileDescriptorSet, name: &str) -> &'a mut EnumDescriptorProto {
    set.file
        .iter_mut()
        .flat_map(|f| f.enum_type.iter_mut())
        .find(|e| e.name() == name)
        .unwrap_or_else(|| panic!("no enum {name}"))
}

fn remove_field(set: &mut FileDescriptorSet, message: &str, field: &str) -> i32 {
    let message = message_mut(set, message);
    let index = message.field.iter().position(|f| f.name() == field).expect("the field exists");
    message.field.remove(index).number()
}

fn reserve_number(set: &mut FileDescriptorSet, message: &str, number: i32) {
    message_mut(set, message)
        .reserved_range
        .push(prost_types::descriptor_proto::ReservedRange { start: Some(number), end: Some(number + 1) });
}

/// Breaks a copy of the current schema with `mutate` and asserts the checker
/// says exactly `expected` (and nothing else).
#[track_caller]
fn assert_breaks(mutate: impl FnOnce(&mut FileDescriptorSet), expected: &[&str]) {
    let baseline = current();
    let mut changed = baseline.clone();
    mutate(&mut changed);
    let complaints = breaking_changes(&baseline, &changed);
    assert_eq!(complaints, expected, "complaints differ");
}

#[test]
fn an_unchanged_schema_passes() {
    assert_breaks(|_| {}, &[]);
}

#[test]
fn additions_pass() {
    assert_breaks(
        |set| {
            let mut sticker = DescriptorProto { name: Some("StickerSent".into()), ..Default::default() };
            sticker.field.push(FieldDescriptorProto {
                name: Some("sticker".into()),
                number: Some(1),
                label: Some(prost_types::field_descriptor_proto::Label::Optional as i32),
                r#type: Some(prost_types::field_descriptor_proto::Type::String as i32),
                json_name: Some("sticker".into()),
                ..Default::default()
            });
            set.file[0].message_type.push(sticker);
            let mut kind = field_mut(set, "RoomEvent", "message").clone();
            kind.name = Some("sticker_sent".into());
            kind.json_name = Some("stickerSent".into());
            kind.number = Some(90);
            kind.type_name = Some(".confab.v1.StickerSent".into());
            message_mut(set, "RoomEvent").field.push(kind);
            let mut slow_mode = field_mut(set, "RoomInfo", "name").clone();
            slow_mode.name = Some("slow_mode".into());
            slow_mode.json_name = Some("slowMode".into());
            slow_mode.number = Some(90);
            message_mut(set, "RoomInfo").field.push(slow_mode);
            let mut code = enum_mut(set, "ErrorCode").value[1].clone();
            code.name = Some("ROOM_FULL".into());
            code.number = Some(90);
            enum_mut(set, "ErrorCode").value.push(code);
            let mut mood = enum_mut(set, "Role").clone();
            mood.name = Some("Mood".into());
            set.file[0].enum_type.push(mood);
        },
        &[],
    );
}

#[test]
fn renaming_a_oneof_passes() {
    assert_breaks(|set| message_mut(set, "ClientFrame").oneof_decl[0].name = Some("cmd".into()), &[]);
}

#[test]
fn removing_a_message_is_caught() {
    assert_breaks(
        |set| {
            for file in &mut set.file {
                file.message_type.retain(|m| m.name() != "Pong");
            }
        },
        &["message confab.v1.Pong was removed or renamed"],
    );
}

#[test]
fn removing_an_enum_is_caught() {
    assert_breaks(
        |set| {
            for file in &mut set.file {
                file.enum_type.retain(|e| e.name() != "RoomScope");
            }
        },
        &["enum confab.v1.RoomScope was removed or renamed"],
    );
}

#[test]
fn renaming_the_package_is_caught() {
    let baseline = current();
    let mut changed = baseline.clone();
    for file in &mut changed.file {
        file.package = Some("confab.v1beta".into());
    }
    let complaints = breaking_changes(&baseline, &changed);
    assert_eq!(complaints.first().map(String::as_str), Some("package confab.v1 was removed or renamed"));
    assert!(complaints.iter().any(|c| c == "message confab.v1.ClientFrame was removed or renamed"));
}

#[test]
fn removing_a_field_is_caught_unless_number_and_name_are_reserved() {
    assert_breaks(
        |set| {
            remove_field(set, "Welcome", "server_version");
        },
        &["field confab.v1.Welcome.server_version (number 5) was removed without `reserved 5;` and \
           `reserved \"server_version\";`"],
    );
    assert_breaks(
        |set| {
            let number = remove_field(set, "Welcome", "server_version");
            reserve_number(set, "Welcome", number);
        },
        &["field confab.v1.Welcome.server_version (number 5) was removed without `reserved \"server_version\";`"],
    );
    assert_breaks(
        |set| {
            remove_field(set, "Welcome", "server_version");
            message_mut(set, "Welcome").reserved_name.push("server_version".into());
        },
        &["field confab.v1.Welcome.server_version (number 5) was removed without `reserved 5;`"],
    );
    assert_breaks(
        |set| {
            let number = remove_field(set, "Welcome", "server_version");
            reserve_number(set, "Welcome", number);
            message_mut(set, "Welcome").reserved_name.push("server_version".into());
        },
        &[],
    );
}

#[test]
fn dropping_a_reservation_is_caught() {
    let mut baseline = current();
    reserve_number(&mut baseline, "Hello", 9);
    message_mut(&mut baseline, "Hello").reserved_name.push("locale".into());
    let complaints = breaking_changes(&baseline, &current());
    assert_eq!(
        complaints,
        [
            "message confab.v1.Hello: reserved numbers 9..9 are no longer reserved",
            "message confab.v1.Hello: reserved name \"locale\" is no longer reserved",
        ]
    );
}

#[test]
fn changing_a_field_number_is_caught() {
    assert_breaks(
        |set| field_mut(set, "SendMessage", "client_txn_id").number = Some(7),
        &["field confab.v1.SendMessage.client_txn_id changed number from 3 to 7"],
    );
}

#[test]
fn changing_a_field_type_is_caught() {
    assert_breaks(
        |set| {
            field_mut(set, "SendMessage", "text").r#type = Some(prost_types::field_descriptor_proto::Type::Bytes as i32)
        },
        &["field confab.v1.SendMessage.text changed type from TYPE_STRING to TYPE_BYTES"],
    );
    // Wire-compatible integer changes still change the JSON (64-bit values
    // are strings), so they count too.
    assert_breaks(
        |set| {
            field_mut(set, "Limits", "max_frame_bytes").r#type =
                Some(prost_types::field_descriptor_proto::Type::Uint64 as i32)
        },
        &["field confab.v1.Limits.max_frame_bytes changed type from TYPE_UINT32 to TYPE_UINT64"],
    );
}

#[test]
fn changing_a_label_is_caught() {
    assert_breaks(
        |set| {
            field_mut(set, "Hello", "client_name").label =
                Some(prost_types::field_descriptor_proto::Label::Repeated as i32)
        },
        &["field confab.v1.Hello.client_name changed label from LABEL_OPTIONAL to LABEL_REPEATED"],
    );
}

#[test]
fn changing_a_type_name_is_caught() {
    assert_breaks(
        |set| field_mut(set, "AuthResult", "user").type_name = Some(".confab.v1.Member".into()),
        &["field confab.v1.AuthResult.user changed type_name from .confab.v1.User to .confab.v1.Member"],
    );
}

#[test]
fn changing_a_json_name_is_caught() {
    assert_breaks(
        |set| field_mut(set, "ClientFrame", "request_id").json_name = Some("reqId".into()),
        &["field confab.v1.ClientFrame.request_id changed json_name from requestId to reqId"],
    );
}

#[test]
fn a_json_name_left_unrecorded_is_derived_like_protoc() {
    assert_eq!(default_json_name("max_frame_bytes_unauthenticated"), "maxFrameBytesUnauthenticated");
    // A baseline without recorded json names compares equal to one with them.
    let mut baseline = current();
    for file in &mut baseline.file {
        for message in &mut file.message_type {
            for field in &mut message.field {
                field.json_name = None;
            }
        }
    }
    assert_eq!(breaking_changes(&baseline, &current()), Vec::<String>::new());
}

#[test]
fn renaming_a_field_is_caught() {
    assert_breaks(
        |set| {
            let field = field_mut(set, "Login", "device_name");
            field.name = Some("device".into());
            field.json_name = Some("device".into());
        },
        &["field confab.v1.Login.device_name (number 3) was renamed to device; JSON names it device instead of \
           deviceName"],
    );
}

#[test]
fn moving_a_field_into_a_oneof_is_caught() {
    assert_breaks(
        |set| {
            let body = add_oneof(set, "SendMessage", "body");
            field_mut(set, "SendMessage", "text").oneof_index = Some(body);
        },
        &["field confab.v1.SendMessage.text moved into oneof body"],
    );
}

#[test]
fn moving_a_field_out_of_a_oneof_is_caught() {
    assert_breaks(
        |set| field_mut(set, "ServerFrame", "ping").oneof_index = None,
        &["field confab.v1.ServerFrame.ping moved out of oneof body"],
    );
}

/// Adds an empty oneof named `name` to `message` and returns its index.
fn add_oneof(set: &mut FileDescriptorSet, message: &str, name: &str) -> i32 {
    let message = message_mut(set, message);
    message.oneof_decl.push(prost_types::OneofDescriptorProto { name: Some(name.into()), options: None });
    i32::try_from(message.oneof_decl.len() - 1).expect("few oneofs")
}

#[test]
fn moving_a_field_between_oneofs_is_caught() {
    // A split: `ping` leaves `body` for a new oneof.
    assert_breaks(
        |set| {
            let push = add_oneof(set, "ServerFrame", "push");
            field_mut(set, "ServerFrame", "ping").oneof_index = Some(push);
        },
        &["field confab.v1.ServerFrame.ping moved from oneof body to oneof push"],
    );
    // A merge: a baseline with two oneofs, a current schema with one.
    let current = current();
    let mut baseline = current.clone();
    let reply = add_oneof(&mut baseline, "ServerFrame", "reply");
    for name in ["error", "welcome"] {
        field_mut(&mut baseline, "ServerFrame", name).oneof_index = Some(reply);
    }
    assert_eq!(
        breaking_changes(&baseline, &current),
        [
            "field confab.v1.ServerFrame.error moved from oneof reply to oneof body",
            "field confab.v1.ServerFrame.welcome moved from oneof reply to oneof body",
        ]
    );
}

#[test]
fn proto3_optional_is_not_a_oneof() {
    // `optional` in proto3 is a synthetic oneof; it changes no JSON name,
    // number or type, so the oneof check must not see it.
    assert_breaks(
        |set| {
            let index = add_oneof(set, "Hello", "_client_name");
            let field = field_mut(set, "Hello", "client_name");
            field.oneof_index = Some(index);
            field.proto3_optional = Some(true);
        },
        &[],
    );
}

#[test]
fn changing_the_syntax_is_caught() {
    let baseline = current();
    let mut changed = baseline.clone();
    let file = changed.file.iter_mut().find(|f| f.name() == "confab/v1/auth.proto").expect("auth.proto");
    file.syntax = Some("proto2".into());
    let complaints = breaking_changes(&baseline, &changed);
    assert!(
        complaints.contains(
            &"message confab.v1.Login: its file's syntax changed from proto3 to proto2, which changes field presence"
                .to_owned()
        ),
        "{complaints:?}"
    );
}

#[test]
fn removing_an_enum_value_is_caught() {
    assert_breaks(
        |set| enum_mut(set, "ErrorCode").value.retain(|v| v.name() != "TXN_CONFLICT"),
        &["enum value confab.v1.ErrorCode.TXN_CONFLICT (45) was removed"],
    );
}

#[test]
fn renumbering_an_enum_value_is_caught() {
    assert_breaks(
        |set| {
            let value =
                enum_mut(set, "CloseCode").value.iter_mut().find(|v| v.name() == "IDLE_TIMEOUT").expect("value");
            value.number = Some(4600);
        },
        &["enum value confab.v1.CloseCode.IDLE_TIMEOUT was renumbered from 4001 to 4600"],
    );
}

#[test]
fn renaming_an_enum_value_is_caught() {
    assert_breaks(
        |set| {
            let value = enum_mut(set, "RoomKind").value.iter_mut().find(|v| v.name() == "DIRECT").expect("value");
            value.name = Some("DM".into());
        },
        &["enum value confab.v1.RoomKind.DIRECT (3) was renamed to DM; JSON carries enum values by name"],
    );
}
