// `cargo xtask serve`で配信しているときだけ、本の再ビルド後にページを読み直します。
// 他の方法（`mdbook serve`や静的ホスティング）では最初の問い合わせが失敗し、何もしません。
(function () {
    if (!["localhost", "127.0.0.1", "[::1]"].includes(location.hostname)) return;
    const url = "/__xtask/generation";
    let seen = null;
    async function poll() {
        let response;
        try {
            response = await fetch(url, { cache: "no-store" });
        } catch (_) {
            setTimeout(poll, 2000); // サーバーの再起動中
            return;
        }
        if (!response.ok) return; // xtask以外のサーバー
        const generation = await response.text();
        if (seen !== null && generation !== seen) {
            location.reload();
            return;
        }
        seen = generation;
        setTimeout(poll, 1000);
    }
    poll();
})();
