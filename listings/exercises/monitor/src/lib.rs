//! 練習問題4の解答例: システムのリソースを定期的に測り、ルールに従って警告を出す監視プログラム。
//!
//! 実行方法:
//!   cargo run -p monitor -- --config listings/exercises/monitor/rules.toml --listen 127.0.0.1:9184
//! 1秒ごとにCPU・メモリ・スワップ・ディスク・ロードアベレージ・ネットワーク・プロセスを測り、
//! ルールの条件が続いたら警告（`"type":"alert"`の行）をJSON Linesで標準出力に書きます。
//! 別の端末で`curl http://127.0.0.1:9184/metrics`を実行すると、Prometheusの形式で最新の値が読めます。
//! ログは標準エラー出力に出ます。Ctrl-C（またはSIGTERM）で片付けてから終わります。
//!
//!   cargo run -p monitor -- --config rules.toml --replay samples.jsonl
//! は、`--samples`で記録したサンプルにルールを当て直します（ルールを試すのに使います）。
//!
//! モジュール: `sample`（サンプルとサンプラー）、`rules`（設定ファイルとルール）、`engine`（ルールの評価器）、
//! `tasks`（測定・再生・評価・書き出しのタスク）、`webhook`（警告を届ける係）、`metrics`（`/metrics`）、
//! `cli`（引数とログ）。`src/main.rs`は引数を読んで、この`run`を呼ぶだけです。

mod cli;
mod engine;
mod metrics;
mod rules;
mod sample;
mod tasks;
mod webhook;

#[cfg(test)]
mod tests;

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::time::Duration;

use anyhow::Context;
use sysinfo::System;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task;
use tokio::time;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use cli::{Cli, init_tracing};
pub use rules::{Rule, load_rules, print_rules};

use engine::Engine;
use metrics::{MetricsState, Stats, serve_metrics};
use sample::SystemSampler;
use tasks::{evaluate, replay, sample_loop, write_records};
use webhook::{Notifier, RetryPolicy, redact, send_webhooks};

// ANCHOR: run
/// `future`を、スレッド1つのランタイムで最後まで動かします。
///
/// `#[tokio::main]`を使わないのは、終わり方のためです。ランタイムをドロップすると、`spawn_blocking`の
/// 処理がすべて戻るまで待ち続けます。応答しないマウントで止まったままの測定のスレッドがあると、
/// Ctrl-Cで片付けが済んでも、プロセスが終わりません。そこで`shutdown_background`で、待たずに閉じます
/// （止まったスレッドは、プロセスの終わりとともに消えます）。
pub fn block_on<T>(future: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokioのランタイムを作れません")?;
    let result = runtime.block_on(future);
    runtime.shutdown_background();
    result
}

/// タスクを起動してチャネルでつなぎ、上流から順に終わるのを待ちます
pub async fn run(cli: Cli, rules: Vec<Rule>) -> anyhow::Result<()> {
    if rules.is_empty() {
        warn!("ルールがないので、警告は出ません（--configでルールのファイルを指定します）");
    }
    let stop = CancellationToken::new();
    // シグナルは、何かを起動して知らせる前に登録します。登録の前に届いたSIGINTは、既定では
    // 即座にプロセスを終わらせ、親が無視する設定（バックグラウンドのジョブなど）なら消えるからです。
    let signal = stop_signals().context("SIGINTとSIGTERMを待てません")?;
    let signal_stop = stop.clone();
    tokio::spawn(async move {
        signal.await;
        info!("停止の合図を受け取りました");
        signal_stop.cancel();
    });
    let stats = Stats::default();
    let (sample_tx, sample_rx) = mpsc::channel(16);
    let (record_tx, record_rx) = mpsc::channel(256);
    let (latest_tx, latest_rx) = watch::channel(None);
    let (firing_tx, firing_rx) = watch::channel(Vec::new());

    let out: Box<dyn Write + Send> = match &cli.output {
        Some(path) => Box::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("{}を開けません", path.display()))?,
        ),
        None => Box::new(io::stdout()),
    };
    let writer = task::spawn_blocking(move || write_records(record_rx, out));

    let (notifier, webhook) = match cli.webhook {
        Some(url) => {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?;
            info!(webhook = %redact(&url), "警告をwebhookへ送ります");
            let notifier = Notifier::default();
            let task = tokio::spawn(send_webhooks(
                client,
                url,
                notifier.clone(),
                RetryPolicy::default(),
                cli.repeat_interval,
                stats.clone(),
            ));
            (Some(notifier), Some(task))
        }
        None => (None, None),
    };
    let instance = cli
        .instance
        .or_else(|| System::host_name().ok())
        .unwrap_or_else(|| "localhost".to_string());

    let server = match cli.listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("{addr}で待ち受けられません"))?;
            info!(
                "http://{}/metrics でメトリクスを配信します",
                listener.local_addr()?
            );
            let state = MetricsState {
                latest: latest_rx,
                firing: firing_rx,
                stats: stats.clone(),
                // 測定の間隔の3倍と時間制限の長いほうより古ければ、止まっているとみなします
                stale_after: cli
                    .replay
                    .is_none()
                    .then(|| (cli.interval * 3).max(cli.sample_timeout)),
            };
            Some(tokio::spawn(serve_metrics(listener, state, stop.clone())))
        }
        None => None,
    };

    let engine = Engine::new(rules).with_instance(instance);
    let notifier_left = notifier.clone();
    let evaluator = tokio::spawn(evaluate(
        engine,
        sample_rx,
        record_tx,
        notifier,
        firing_tx,
        stats.clone(),
        cli.samples,
    ));

    let source = match cli.replay {
        Some(path) => {
            info!("{}のサンプルにルールを当てます", path.display());
            tokio::spawn(replay(path, sample_tx, latest_tx, stats.clone()))
        }
        None => {
            let sampler = SystemSampler::new(cli.top).context("システムの情報を読めません")?;
            info!(interval = ?cli.interval, "測定を始めます");
            tokio::spawn(sample_loop(
                sampler,
                cli.interval,
                cli.sample_timeout,
                cli.count,
                sample_tx,
                latest_tx,
                stats.clone(),
                stop.clone(),
            ))
        }
    };

    // 上流から順に待ちます。測定が止まるとチャネルが閉じ、評価、書き出し、webhookの順に終わります
    let sampled = source.await?;
    // 評価の残りと書き出しの残りを待ちます。ただし、書き出し先が詰まっていると（読まれないパイプなど）、
    // 残りの行はいつまでも書けず、評価のタスクも最後の警告を渡せません。上限（--flush-timeout）を過ぎたらあきらめます
    let flushed = time::timeout(cli.flush_timeout, async {
        evaluator.await?;
        writer.await?.context("JSON Linesを書けません")
    })
    .await;
    match flushed {
        Ok(result) => result?,
        Err(_) => warn!(
            "出力が詰まっていて、{}以内に書き終わらなかった行をあきらめました",
            humantime::format_duration(cli.flush_timeout)
        ),
    }
    if let (Some(webhook), Some(notifier)) = (webhook, notifier_left) {
        let abort = webhook.abort_handle();
        // まだ届いていない状態（とくに解決）を送ってから終わります。ただし、送れない相手に
        // いつまでも待たされないよう、残りを送る時間に上限を設けます
        if time::timeout(Duration::from_secs(5), webhook)
            .await
            .is_err()
        {
            abort.abort();
            warn!(
                undelivered = notifier.undelivered(),
                "5秒以内に送り終わらなかった警告をあきらめました"
            );
        }
    }
    stop.cancel();
    if let Some(server) = server {
        server.await??;
    }
    sampled?;
    info!(
        samples = stats.samples.get(),
        webhook_sent = stats.webhook_sent.get(),
        webhook_failed = stats.webhook_failed.get(),
        "停止しました"
    );
    Ok(())
}

/// Ctrl-C（SIGINT）か、サービスの停止で送られるSIGTERMを受け取る準備をして、どちらかが届いたら終わる`Future`を返します
fn stop_signals() -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        // `signal`を呼んだ時点で登録されます（待ち始める前に届いたものも残ります）。
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        let ctrl_c = tokio::signal::ctrl_c();
        Ok(async move {
            let _ = ctrl_c.await;
        })
    }
}
// ANCHOR_END: run
