use abacus_layers::metrics::MetricsLayer;
use abacus_layers::metrics::prometheus::PrometheusConfig;
use futures_util::StreamExt;
use tower::{Layer, ServiceExt, service_fn};

use crate::common::*;

const LABELS: &[(&str, &str)] = &[("agent_name", "abacus")];

fn a2a_layer() -> MetricsLayer {
    MetricsLayer::new()
        .requests_total_name("a2a_requests_total")
        .duration_name("a2a_request_duration_seconds")
        .in_flight_name("a2a_active_requests")
        .label("agent_name", "abacus")
}

#[tokio::test(start_paused = true)]
async fn unary_requests_are_counted_and_timed() {
    let m = TestMetrics::install();
    let svc = a2a_layer().layer(service_fn(|fail: bool| async move {
        tokio::time::sleep(ms(250)).await;
        if fail {
            Err(std::io::Error::other("boom"))
        } else {
            Ok(Resp::Unary(1))
        }
    }));
    svc.clone().oneshot(false).await.unwrap();
    svc.clone().oneshot(false).await.unwrap();
    svc.clone().oneshot(true).await.unwrap_err();

    let ok = &[("agent_name", "abacus"), ("status", "ok")];
    let err = &[("agent_name", "abacus"), ("status", "error")];
    assert_eq!(m.counter("a2a_requests_total", ok), 2);
    assert_eq!(m.counter("a2a_requests_total", err), 1);
    assert_eq!(
        m.histogram("a2a_request_duration_seconds", ok),
        vec![0.25, 0.25]
    );
    assert_eq!(m.histogram("a2a_request_duration_seconds", err), vec![0.25]);
    assert_eq!(m.gauge("a2a_active_requests", LABELS), 0.0);
}

#[tokio::test(start_paused = true)]
async fn in_flight_gauge_tracks_requests() {
    let m = TestMetrics::install();
    let (layer_svc, mut handle) = tower_test::mock::spawn_layer::<(), Resp, _>(MetricsLayer::new());
    let mut svc = layer_svc;
    assert!(svc.poll_ready().is_ready());
    let f1 = svc.call(());
    assert!(svc.poll_ready().is_ready());
    let f2 = svc.call(());
    assert_eq!(m.gauge("requests_in_flight", &[]), 2.0);
    handle
        .next_request()
        .await
        .unwrap()
        .1
        .send_response(Resp::Unary(1));
    f1.await.unwrap();
    assert_eq!(m.gauge("requests_in_flight", &[]), 1.0);
    // A request whose future is dropped is recorded as cancelled.
    drop(f2);
    assert_eq!(m.gauge("requests_in_flight", &[]), 0.0);
    assert_eq!(m.counter("requests_total", &[("status", "cancelled")]), 1);
    assert_eq!(m.counter("requests_total", &[("status", "ok")]), 1);
}

#[tokio::test(start_paused = true)]
async fn streams_are_in_flight_until_they_end() {
    let m = TestMetrics::install();
    let svc = a2a_layer().layer(service_fn(|_: ()| async {
        tokio::time::sleep(ms(100)).await;
        Ok::<_, std::io::Error>(Resp::Stream(timed_stream(vec![(secs(1), 1), (secs(2), 2)])))
    }));
    let mut s = svc.oneshot(()).await.unwrap().stream();
    assert_eq!(m.gauge("a2a_active_requests", LABELS), 1.0);
    assert_eq!(m.counter("a2a_requests_total", LABELS), 0);
    assert_eq!(s.next().await, Some(Event::Item(1)));
    assert_eq!(s.next().await, Some(Event::Item(2)));
    assert_eq!(m.gauge("a2a_active_requests", LABELS), 1.0);
    assert_eq!(s.next().await, None);
    assert_eq!(m.gauge("a2a_active_requests", LABELS), 0.0);
    let ok = &[("agent_name", "abacus"), ("status", "ok")];
    assert_eq!(m.counter("a2a_requests_total", ok), 1);
    assert_eq!(m.histogram("a2a_request_duration_seconds", ok), vec![3.1]);
}

#[tokio::test(start_paused = true)]
async fn dropped_stream_ends_the_request() {
    let m = TestMetrics::install();
    let svc = MetricsLayer::new().layer(service_fn(|_: ()| async {
        Ok::<_, std::io::Error>(Resp::Stream(channel_stream().1))
    }));
    let res = svc.oneshot(()).await.unwrap();
    tokio::time::advance(secs(4)).await;
    assert_eq!(m.gauge("requests_in_flight", &[]), 1.0);
    drop(res);
    assert_eq!(m.gauge("requests_in_flight", &[]), 0.0);
    assert_eq!(
        m.histogram("request_duration_seconds", &[("status", "ok")]),
        vec![4.0]
    );
}

#[tokio::test]
async fn custom_status_classifier() {
    let m = TestMetrics::install();
    let layer = MetricsLayer::new()
        .status_label_name("outcome")
        .classify_status(|r: &Result<u16, std::io::Error>| match r {
            Ok(s) if *s < 400 => "success",
            Ok(_) => "http_error",
            Err(_) => "error",
        });
    let svc = layer.layer(service_fn(
        |s: u16| async move { Ok::<_, std::io::Error>(s) },
    ));
    for s in [200, 404, 500, 201] {
        svc.clone().oneshot(s).await.unwrap();
    }
    assert_eq!(m.counter("requests_total", &[("outcome", "success")]), 2);
    assert_eq!(m.counter("requests_total", &[("outcome", "http_error")]), 2);
}

#[tokio::test]
async fn the_request_label_is_read_from_each_request() {
    for keep in [false, true] {
        let m = TestMetrics::install();
        let layer =
            a2a_layer()
                .keep_handles(keep)
                .request_label("binding", |path: &&'static str| match *path {
                    "/" => "jsonrpc",
                    _ => "rest",
                });
        let svc = layer.layer(service_fn(|path: &'static str| async move {
            if path.ends_with(":boom") {
                Err(std::io::Error::other("boom"))
            } else {
                Ok(Resp::Unary(1))
            }
        }));
        for path in ["/", "/", "/message:send", "/tasks/t:boom"] {
            let _ = svc.clone().oneshot(path).await;
        }
        let labels = |binding, status| {
            [
                ("agent_name", "abacus"),
                ("binding", binding),
                ("status", status),
            ]
        };
        assert_eq!(
            m.counter("a2a_requests_total", &labels("jsonrpc", "ok")),
            2,
            "keep {keep}"
        );
        assert_eq!(
            m.counter("a2a_requests_total", &labels("rest", "ok")),
            1,
            "keep {keep}"
        );
        assert_eq!(
            m.counter("a2a_requests_total", &labels("rest", "error")),
            1,
            "keep {keep}"
        );
        assert_eq!(
            m.counter("a2a_requests_total", &labels("jsonrpc", "error")),
            0,
            "keep {keep}"
        );
        assert_eq!(
            m.histogram("a2a_request_duration_seconds", &labels("jsonrpc", "ok"))
                .len(),
            2
        );
        // The gauge keeps the static labels only.
        assert_eq!(m.gauge("a2a_active_requests", LABELS), 0.0);
    }
}

#[tokio::test(start_paused = true)]
async fn kept_handles_record_the_same_as_lookups() {
    // 66 statuses: 64 get kept handles, the last two fall back to lookups.
    let statuses: &'static [&'static str] = Vec::leak(
        (0..66)
            .map(|i| &*String::leak(format!("s{i}")))
            .collect::<Vec<&'static str>>(),
    );
    let m = TestMetrics::install();
    let layer =
        a2a_layer()
            .keep_handles(true)
            .classify_status(move |r: &Result<usize, std::io::Error>| match r {
                Ok(i) => statuses[*i],
                Err(_) => "error",
            });
    let svc = layer.layer(service_fn(|i: usize| async move {
        tokio::time::sleep(ms(100)).await;
        Ok::<_, std::io::Error>(i)
    }));
    for round in 0..2 {
        for (i, status) in statuses.iter().enumerate() {
            let call = svc.clone().oneshot(i);
            tokio::pin!(call);
            assert!(futures_util::FutureExt::now_or_never(call.as_mut()).is_none());
            assert_eq!(m.gauge("a2a_active_requests", LABELS), 1.0);
            call.await.unwrap();
            assert_eq!(m.gauge("a2a_active_requests", LABELS), 0.0);
            let labels = &[("agent_name", "abacus"), ("status", *status)];
            assert_eq!(m.counter("a2a_requests_total", labels), round + 1);
        }
    }
    for status in ["s65", "s0"] {
        let labels = &[("agent_name", "abacus"), ("status", status)];
        assert_eq!(
            m.histogram("a2a_request_duration_seconds", labels),
            vec![0.1, 0.1]
        );
    }
}

#[tokio::test]
async fn a_second_request_label_goes_next_to_the_first() {
    for keep in [false, true] {
        let m = TestMetrics::install();
        let layer = a2a_layer()
            .keep_handles(keep)
            .request_label("binding", |r: &(&'static str, &'static str)| r.0)
            .second_request_label("method", |r: &(&'static str, &'static str)| r.1);
        let svc = layer.layer(service_fn(|_: (&'static str, &'static str)| async move {
            Ok::<_, std::io::Error>(Resp::Unary(1))
        }));
        for call in [
            ("jsonrpc", "SendMessage"),
            ("jsonrpc", "SendMessage"),
            ("jsonrpc", "GetTask"),
            ("grpc", "SendMessage"),
        ] {
            svc.clone().oneshot(call).await.unwrap();
        }
        let labels = |binding, method| {
            [
                ("agent_name", "abacus"),
                ("binding", binding),
                ("method", method),
                ("status", "ok"),
            ]
        };
        for (binding, method, n) in [
            ("jsonrpc", "SendMessage", 2),
            ("jsonrpc", "GetTask", 1),
            ("grpc", "SendMessage", 1),
            ("grpc", "GetTask", 0),
        ] {
            assert_eq!(
                m.counter("a2a_requests_total", &labels(binding, method)),
                n,
                "keep {keep}: {binding} {method}"
            );
        }
        assert_eq!(
            m.histogram(
                "a2a_request_duration_seconds",
                &labels("jsonrpc", "SendMessage")
            )
            .len(),
            2
        );
    }
}

#[tokio::test]
async fn prometheus_text_exposition() {
    let recorder = PrometheusConfig::new().build().unwrap();
    let handle = recorder.handle();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let svc = a2a_layer().layer(service_fn(|_: ()| async {
        Ok::<_, std::io::Error>(Resp::Unary(1))
    }));
    svc.clone().oneshot(()).await.unwrap();
    svc.oneshot(()).await.unwrap();
    let text = handle.render();
    assert!(
        text.contains("a2a_requests_total{agent_name=\"abacus\",status=\"ok\"} 2"),
        "{text}"
    );
    assert!(text.contains("a2a_request_duration_seconds_bucket{agent_name=\"abacus\",status=\"ok\",le=\"0.005\"} 2"), "{text}");
    assert!(
        text.contains("a2a_active_requests{agent_name=\"abacus\"} 0"),
        "{text}"
    );
}
