// 警告をエラーに格上げして、コンパイラの注意を確かめられるようにしています。
#![deny(unused_must_use)]

async fn greet(name: &str) -> String {
    format!("こんにちは、{name}さん")
}

#[tokio::main]
async fn main() {
    greet("A"); // `.await`を書き忘れた
}
