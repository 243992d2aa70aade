"""The lean websocket protocol's stand-ins for asyncio's Queue and Event keep uvicorn's
semantics: every received message in order, and writers held while writes are paused."""

from __future__ import annotations

import asyncio

from app.websocket_protocol import ReceiveQueue, Writable


def test_the_receive_queue_keeps_every_message_in_order() -> None:
    async def scenario() -> None:
        queue = ReceiveQueue()
        waiting = asyncio.create_task(queue.get())
        await asyncio.sleep(0)
        for n in range(200):  # more than a subscriber queue would keep
            queue.put_nowait({"type": "websocket.receive", "text": str(n)})
        received = [await waiting] + [await queue.get() for _ in range(199)]
        assert [m["text"] for m in received] == [str(n) for n in range(200)]  # type: ignore[typeddict-item]
        assert queue.empty()

    asyncio.run(scenario())


def test_writers_wait_while_paused_and_go_on_when_resumed() -> None:
    async def scenario() -> None:
        writable = Writable()
        await asyncio.wait_for(writable.wait(), 1)  # writable from the start
        writable.clear()
        first = asyncio.create_task(writable.wait())
        gone = asyncio.create_task(writable.wait())
        second = asyncio.create_task(writable.wait())
        await asyncio.sleep(0.01)
        assert not first.done() and not second.done() and not writable.is_set()
        gone.cancel()  # one writer gives up: the others still wait, then go on
        await asyncio.gather(gone, return_exceptions=True)
        assert not first.done() and not second.done()
        writable.set()
        await asyncio.wait_for(asyncio.gather(first, second), 1)
        assert writable.is_set()

    asyncio.run(scenario())
