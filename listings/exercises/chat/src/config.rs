//! コマンドラインオプション（`clap`）と、その既定値。

use std::net::SocketAddr;
use std::time::Duration;

use bytesize::ByteSize;
use clap::{ArgAction, Parser};

// ANCHOR: config
/// TCP（nc・telnet）とWebSocket（ブラウザ）で話せるチャットサーバー
#[derive(Parser, Debug, Clone)]
#[command(version)]
pub struct Config {
    /// 行プロトコル（nc・telnet・chat-client）で待ち受けるアドレス
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub addr: SocketAddr,
    /// ブラウザ用のHTTP（`/`）とWebSocket（`/ws`）で待ち受けるアドレス
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// 同時に開いておける接続の数（TCP、HTTP、WebSocketの合計）
    #[arg(long, default_value_t = 4096, value_parser = at_least(1))]
    pub max_clients: usize,
    /// 1行の最大バイト数（改行を除く）。これより長い行は捨てて、エラーを返します
    #[arg(long, default_value_t = 2048, value_parser = at_least(16))]
    pub max_line: usize,
    /// クライアントごとの送信キューの上限（例: 512KiB, 1MiB）。これを超えて遅れたクライアントは切断します
    #[arg(long, default_value = "1MiB", value_parser = parse_sendq)]
    pub sendq: ByteSize,
    /// 部屋の人数がこれを超えたら、入室・退室・名前の変更のお知らせを部屋に配りません
    #[arg(long, default_value_t = 100)]
    pub announce_max: usize,
    /// 続けて送れる行の数（トークンバケツの容量）
    #[arg(long, default_value_t = 10, value_parser = at_least(1))]
    pub flood_burst: usize,
    /// 連続して送り切ったあと、1行を送れるようになるまでの間隔（例: 500ms, 2s）
    #[arg(long, default_value = "500ms", value_parser = positive_duration)]
    pub flood_interval: Duration,
    /// 送りすぎの状態（読み込みを止めている状態）がこれだけ続いたら切断します
    #[arg(long, default_value = "30s", value_parser = positive_duration)]
    pub flood_kick: Duration,
    /// 入力がこれだけないクライアントに、生きているかを確かめるPINGを送ります
    #[arg(long, default_value = "2m", value_parser = positive_duration)]
    pub ping_interval: Duration,
    /// PINGのあと、この時間内に何も届かなければ切断します（PONGでも、どんな行でも構いません）
    #[arg(long, default_value = "1m", value_parser = positive_duration)]
    pub ping_timeout: Duration,
    /// `/ws`への接続を許すページのオリジン（例: https://chat.example.com）。同じオリジンは常に許します
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// ログを詳しくします（-vでdebug、-vvでtrace）
    #[arg(short, long, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// ログを減らします（-qでwarn、-qqでerrorだけ）
    #[arg(short, long, action = ArgAction::Count)]
    pub quiet: u8,
}
// ANCHOR_END: config

impl Config {
    /// `-v`と`-q`から決まるログの水準。環境変数`RUST_LOG`があれば、そちらが優先です。
    pub fn log_level(&self) -> tracing::Level {
        use tracing::Level;
        match i16::from(self.verbose) - i16::from(self.quiet) {
            ..=-2 => Level::ERROR,
            -1 => Level::WARN,
            0 => Level::INFO,
            1 => Level::DEBUG,
            2.. => Level::TRACE,
        }
    }

    /// テストや埋め込みで使う、既定値だけの設定（アドレスはどちらも`127.0.0.1:0`）。
    pub fn for_tests() -> Config {
        Config::parse_from([
            "chat-server",
            "--addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
    }
}

/// `--max-clients`などの下限を確かめる`clap`の値パーサ。
fn at_least(min: u64) -> impl clap::builder::TypedValueParser<Value = usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(min..)
}

/// `500ms`・`30s`・`2m`・`1h 30m`の形の時間（`humantime`の書式）。0は認めません。
fn positive_duration(text: &str) -> Result<Duration, String> {
    let duration =
        humantime::parse_duration(text).map_err(|e| format!("{e}（例: 500ms, 30s, 2m）"))?;
    if duration.is_zero() {
        return Err("0より長くしてください".to_string());
    }
    Ok(duration)
}

/// `1MiB`・`512KiB`・`65536`の形の大きさ。1行が必ず入るように4KiB以上にします。
fn parse_sendq(text: &str) -> Result<ByteSize, String> {
    let size: ByteSize = text.parse()?;
    if size < ByteSize::kib(4) {
        return Err("4KiB以上にしてください".to_string());
    }
    Ok(size)
}

/// 時間を「30分」「5秒」「300ミリ秒」のように書きます。
pub fn japanese(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        _ if ms.is_multiple_of(3_600_000) => format!("{}時間", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}分", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}秒", ms / 1000),
        _ => format!("{ms}ミリ秒"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_with_units() {
        let config = Config::parse_from([
            "chat-server",
            "--sendq",
            "512KiB",
            "--flood-interval",
            "2s",
            "--ping-interval",
            "1m 30s",
        ]);
        assert_eq!(config.sendq, ByteSize::kib(512));
        assert_eq!(config.flood_interval, Duration::from_secs(2));
        assert_eq!(config.ping_interval, Duration::from_secs(90));
        let defaults = Config::for_tests();
        assert_eq!(defaults.sendq, ByteSize::mib(1));
        assert_eq!(defaults.log_level(), tracing::Level::INFO);
        assert!(positive_duration("0s").is_err());
        assert!(positive_duration("10x").is_err());
        assert!(parse_sendq("1KiB").is_err());
        assert!(Config::try_parse_from(["chat-server", "-v", "-q"]).is_err());
        assert_eq!(japanese(Duration::from_secs(1800)), "30分");
        assert_eq!(japanese(Duration::from_millis(300)), "300ミリ秒");
    }
}
