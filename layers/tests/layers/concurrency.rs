use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use abacus_layers::concurrency::{ConcurrencyLimitError, ConcurrencyLimitLayer};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use tower::{Layer, ServiceExt, service_fn};
use tower_test::mock;

use crate::common::*;

#[tokio::test]
async fn waits_for_a_permit() {
    let layer = ConcurrencyLimitLayer::new(1);
    let h = layer.handle();
    let (mut svc, mut handle) = mock::spawn_layer::<u32, Resp, _>(layer);

    assert!(svc.poll_ready().is_ready());
    let first = svc.call(1);
    assert_eq!(h.in_flight(), 1);
    // The limiter is full: the next request waits (backpressure).
    assert!(svc.poll_ready().is_pending());

    let (req, send) = handle.next_request().await.unwrap();
    assert_eq!(req, 1);
    send.send_response(Resp::Unary(10));
    assert_eq!(first.await.unwrap().unary(), 10);
    // The released permit went straight to the waiting service.
    assert_eq!(h.in_flight(), 1);
    assert!(svc.is_woken());
    assert!(matches!(svc.poll_ready(), Poll::Ready(Ok(()))));
    drop(svc);
    assert_eq!(h.in_flight(), 0);
}

#[tokio::test]
async fn sheds_load_without_calling_inner() {
    let layer = ConcurrencyLimitLayer::new(1).load_shed(true);
    let (mut svc, mut handle) = mock::spawn_layer::<u32, Resp, _>(layer);

    assert!(svc.poll_ready().is_ready());
    let first = svc.call(1);

    // Full: poll_ready is still ready, and the call fails fast.
    assert!(matches!(svc.poll_ready(), Poll::Ready(Ok(()))));
    let err = svc.call(2).await.unwrap_err();
    assert!(matches!(err, ConcurrencyLimitError::Overloaded));
    assert!(err.is_overloaded());

    // Only the first request reached the inner service.
    let (req, send) = handle.next_request().await.unwrap();
    assert_eq!(req, 1);
    send.send_response(Resp::Unary(1));
    first.await.unwrap();
    assert!(poll_once(&mut Box::pin(handle.next_request())).is_pending());

    // With the permit back, requests pass again.
    assert!(svc.poll_ready().is_ready());
    let third = svc.call(3);
    let (req, send) = handle.next_request().await.unwrap();
    assert_eq!(req, 3);
    send.send_response(Resp::Unary(3));
    assert_eq!(third.await.unwrap().unary(), 3);
}

#[tokio::test]
async fn permit_held_until_stream_ends() {
    let layer = ConcurrencyLimitLayer::new(1);
    let h = layer.handle();
    let (tx, stream) = channel_stream();
    let stream = Arc::new(Mutex::new(Some(stream)));
    let svc = layer.layer(service_fn(move |_: ()| {
        let s = stream.lock().unwrap().take().unwrap();
        async move { Ok::<_, std::io::Error>(Resp::Stream(s)) }
    }));

    let mut s = svc.clone().oneshot(()).await.unwrap().stream();
    // The response head is out, the stream is not done: still in flight.
    assert_eq!(h.in_flight(), 1);
    let mut next = svc.clone();
    assert!(poll_once(&mut Box::pin(next.ready())).is_pending());

    tx.send(1).unwrap();
    assert_eq!(s.next().await, Some(Event::Item(1)));
    assert!(poll_once(&mut Box::pin(next.ready())).is_pending());
    drop(tx);
    assert_eq!(s.next().await, None);
    // The stream ended: its permit goes to the waiting request.
    assert!(poll_once(&mut Box::pin(next.ready())).is_ready());
    drop(next);
    assert_eq!(h.in_flight(), 0);
}

#[tokio::test]
async fn permit_released_when_stream_dropped() {
    let layer = ConcurrencyLimitLayer::new(2);
    let h = layer.handle();
    let svc = layer.layer(service_fn(|_: ()| async {
        Ok::<_, std::io::Error>(Resp::Stream(channel_stream().1))
    }));
    let a = svc.clone().oneshot(()).await.unwrap();
    let b = svc.clone().oneshot(()).await.unwrap();
    assert_eq!(h.in_flight(), 2);
    assert_eq!(h.available_permits(), 0);
    drop(a);
    assert_eq!(h.in_flight(), 1);
    drop(b);
    assert_eq!(h.in_flight(), 0);
}

#[tokio::test]
async fn permit_released_on_error_and_unary() {
    let (layer, h) = ConcurrencyLimitLayer::pair(1);
    let svc = layer.layer(service_fn(|fail: bool| async move {
        if fail {
            Err(std::io::Error::other("boom"))
        } else {
            Ok(Resp::Unary(1))
        }
    }));
    let err = svc.clone().oneshot(true).await.unwrap_err();
    assert!(matches!(err, ConcurrencyLimitError::Inner(_)));
    assert_eq!(h.in_flight(), 0);
    svc.oneshot(false).await.unwrap();
    assert_eq!(h.in_flight(), 0);
}

#[tokio::test]
async fn http_body_holds_permit_until_consumed() {
    let (layer, h) = ConcurrencyLimitLayer::pair(1);
    let svc = layer.layer(service_fn(|_: ()| async {
        Ok::<_, std::io::Error>(http::Response::new(http_body_util::Full::new(
            bytes::Bytes::from("hello"),
        )))
    }));
    let res = svc.oneshot(()).await.unwrap();
    assert_eq!(h.in_flight(), 1);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "hello");
    assert_eq!(h.in_flight(), 0);
}

#[tokio::test]
async fn clones_share_the_semaphore() {
    let layer = ConcurrencyLimitLayer::new(1).load_shed(true);
    let h = layer.clone().handle();
    let a = layer.layer(service_fn(|_: ()| async {
        Ok::<_, std::io::Error>(Resp::Stream(channel_stream().1))
    }));
    let b = layer.clone().layer(service_fn(|_: ()| async {
        Ok::<_, std::io::Error>(Resp::Unary(1))
    }));
    let held = a.oneshot(()).await.unwrap();
    assert_eq!(h.in_flight(), 1);
    assert!(b.clone().oneshot(()).await.unwrap_err().is_overloaded());
    drop(held);
    assert_eq!(b.oneshot(()).await.unwrap().unary(), 1);
}

#[tokio::test(start_paused = true)]
async fn queue_wait_is_reported() {
    let waits = Arc::new(Mutex::new(Vec::new()));
    let w = waits.clone();
    let layer = ConcurrencyLimitLayer::new(1).on_queue_wait(move |d| w.lock().unwrap().push(d));
    let svc = layer.layer(service_fn(|_: ()| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok::<_, std::io::Error>(Resp::Unary(1))
    }));
    let first = tokio::spawn(svc.clone().oneshot(()));
    tokio::task::yield_now().await;
    let second = tokio::spawn(svc.oneshot(()));
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    let waits = waits.lock().unwrap().clone();
    assert_eq!(waits, vec![Duration::ZERO, Duration::from_secs(5)]);
}

#[tokio::test]
async fn dropping_a_readied_service_releases_its_permit() {
    let (layer, h) = ConcurrencyLimitLayer::pair(1);
    let mut svc = layer.layer(service_fn(|_: ()| async {
        Ok::<_, std::io::Error>(Resp::Unary(1))
    }));
    svc.ready().await.unwrap();
    assert_eq!(h.in_flight(), 1);
    drop(svc);
    assert_eq!(h.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn queue_wait_histogram() {
    let m = TestMetrics::install();
    let layer = ConcurrencyLimitLayer::new(1).queue_wait_histogram("queue_wait_seconds");
    let svc = layer.layer(service_fn(|_: ()| async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok::<_, std::io::Error>(Resp::Unary(1))
    }));
    let first = tokio::spawn(svc.clone().oneshot(()));
    tokio::task::yield_now().await;
    svc.oneshot(()).await.unwrap();
    first.await.unwrap().unwrap();
    assert_eq!(m.histogram("queue_wait_seconds", &[]), vec![0.0, 2.0]);
}
