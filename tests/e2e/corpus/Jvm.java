// What a JVM prints when a service written for it dies, live: `java Jvm.java` (the source
// launcher). Each case is a thread whose uncaught exception the JVM prints as it does for
// any thread ("Exception in thread ..."), one after another; the launcher's own errors
// (a missing main class, a class file too new) come from separate `java` runs in the test.
import java.net.ServerSocket;
import java.net.Socket;
import java.util.ArrayList;
import java.util.List;

public class Jvm {
    static int cases = 0;

    static void run(String name, Runnable body) throws InterruptedException {
        System.err.println("=== CASE " + name);
        System.err.flush();
        Thread t = new Thread(body, "worker-" + ++cases);
        t.start();
        t.join();
    }

    static int depth(int n) { return depth(n + 1) + 1; }

    public static void main(String[] args) throws Exception {
        run("NullPointerException", () -> { String user = System.getenv("NO_SUCH_VAR"); user.length(); });
        run("OutOfMemoryError", () -> { List<long[]> held = new ArrayList<>(); while (true) held.add(new long[1 << 20]); });
        run("StackOverflowError", () -> depth(0));
        run("ClassNotFoundException", () -> {
            try { Class.forName("com.example.billing.InvoiceService"); } catch (ClassNotFoundException e) { throw new RuntimeException(e); }
        });
        run("NumberFormatException", () -> Integer.parseInt("8080a"));
        run("ArrayIndexOutOfBoundsException", () -> { int[] a = new int[2]; a[3] = 1; });
        run("IllegalStateException", () -> { throw new IllegalStateException("connection pool is closed"); });
        run("BindException", () -> {
            try (ServerSocket a = new ServerSocket(0); ServerSocket b = new ServerSocket(a.getLocalPort())) {
            } catch (java.io.IOException e) { throw new RuntimeException(e); }
        });
        run("ConnectException", () -> {
            try (Socket s = new Socket("127.0.0.1", 1)) {
            } catch (java.io.IOException e) { throw new RuntimeException(e); }
        });
        System.err.flush();
    }
}
