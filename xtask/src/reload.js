// `cargo xtask serve`だけが配るスクリプトです（本には含まれません）。xtaskのサーバーが
// 配信するHTMLに<script>として差し込み、本が再ビルドされたらページを読み直します。
(function () {
    "use strict";
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
        if (!response.ok) return;
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
