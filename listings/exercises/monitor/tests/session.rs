//! 本文の実行例（`check.txt`、`bad-config.txt`、`replay.txt`）が、本物の実行と一致していることを確かめます。
//!
//! 同梱のルール（`rules.toml`）の検査、誤りのある設定（`bad-rules.toml`）、そして実際に記録したサンプル
//! （`spike.jsonl`: CPUに負荷をかけながら`--samples --top 3`で記録したもの）にルールを当て直した結果です。
//! ログの時刻とマシンの名前だけを無視し、ほかの文言・数値・行の並びはそのまま比べます。
//! 記録し直すには: `cargo xtask bless`

use std::path::Path;
use std::process::{Command, Stdio};

/// 記録するファイルと、そのコマンドの引数
const SESSIONS: &[(&str, &[&str])] = &[
    ("check.txt", &["--check", "--config", "rules.toml"]),
    ("bad-config.txt", &["--check", "--config", "bad-rules.toml"]),
    (
        "replay.txt",
        &["--config", "rules.toml", "--replay", "spike.jsonl"],
    ),
];

/// 端末で実行したときのような記録（標準出力の後に標準エラー出力、失敗したら終了コード）を作ります
fn transcript(args: &[&str]) -> String {
    // 時間制限は要りません: --checkと--replayは待たずに終わります（固まればcargo testごと失敗します）
    let out = Command::new(env!("CARGO_BIN_EXE_monitor"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let mut text = format!(
        "$ monitor {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        text += &format!("$ echo $?\n{}\n", out.status.code().unwrap_or(-1));
    }
    text
}

#[test]
fn recorded_sessions_match_a_fresh_run() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (file, args) in SESSIONS {
        let fresh = transcript(args);
        // ログの時刻と、警告に書くマシンの名前（既定はホスト名）は、実行する場所と時刻で変わります
        let varies = book_support::Varies::nothing()
            .redact("[TIME]", r"(?m)^\d{4}-\d\d-\d\dT[0-9:.]+Z")
            .redact("[HOST]", r#""instance":"(?<redacted>[^"]*)""#);
        book_support::assert_matches_recording(dir.join(file), &fresh, varies);
    }
}

/// 本文に載せるサンプルの1行（負荷をかけている最中の、`spike.jsonl`の12行目）
const SAMPLE_LINE: usize = 12;

/// 1行のJSONを読みやすく並べ直します。最上位のキーを1行に1つ、オブジェクトの配列は要素を1行に1つにし、
/// それより内側は1行のままにします。キーの順序も中身も変えません（空白と改行を足すだけです）。
fn pretty(line: &str) -> String {
    let mut out = String::new();
    // 開いている括弧ごとに「要素ごとに改行するか」
    let mut breaking: Vec<bool> = Vec::new();
    let (mut in_string, mut escaped) = (false, false);
    let chars: Vec<char> = line.trim().chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        let indent = |depth: usize| format!("\n{}", "  ".repeat(depth));
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                let depth = breaking.len();
                let breaks =
                    depth == 0 || (depth == 1 && c == '[' && chars.get(i + 1) == Some(&'{'));
                breaking.push(breaks);
                out.push(c);
                if breaks {
                    out += &indent(depth + 1);
                }
            }
            '}' | ']' => {
                if breaking.pop() == Some(true) {
                    out += &indent(breaking.len());
                }
                out.push(c);
            }
            ',' => {
                out.push(c);
                if breaking.last() == Some(&true) {
                    out += &indent(breaking.len());
                }
            }
            ':' if breaking.len() == 1 => out.push_str(": "),
            _ => out.push(c),
        }
    }
    out.push('\n');
    out
}

#[test]
fn sample_json_is_a_line_of_spike_jsonl() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let spike = std::fs::read_to_string(dir.join("spike.jsonl")).unwrap();
    let line = spike.lines().nth(SAMPLE_LINE - 1).unwrap();
    let fresh = pretty(line);
    // 並べ直しても同じJSONであること
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
    assert_eq!(parse(&fresh), parse(line));
    book_support::assert_matches_recording(
        dir.join("sample.json"),
        &fresh,
        book_support::Varies::nothing(),
    );
}
