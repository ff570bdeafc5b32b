import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Enumeration;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import javax.jms.BytesMessage;
import javax.jms.Connection;
import javax.jms.DeliveryMode;
import javax.jms.JMSException;
import javax.jms.MapMessage;
import javax.jms.Message;
import javax.jms.MessageConsumer;
import javax.jms.MessageProducer;
import javax.jms.ObjectMessage;
import javax.jms.Session;
import javax.jms.StreamMessage;
import javax.jms.TextMessage;
import org.apache.activemq.ActiveMQConnectionFactory;

/**
 * A real JMS client (ActiveMQ's own OpenWire client, from Debian's activemq package) for msgkit's
 * interop tests: the "Java service" on the other side of a Node service using @msgkit/activemq.
 *
 * <pre>
 * consume --queue Consumer.G.VirtualTopic.T | --group G --topic T  --count N [--timeout-ms 10000]
 *         [--rollback-first]   receive each message once in a transacted session and roll back,
 *                              so that the second delivery shows JMSRedelivered/JMSXDeliveryCount
 * send    --topic T | --destination-topic VirtualTopic.T | --queue Q
 *         then one or more messages, each started by --text TEXT | --text-base64 B64 | --bytes-base64 B64,
 *         followed by its options: --prop name=string:v | name=string64:B64 (UTF-8, base64) |
 *         name=int:42 | name=long:7 | name=boolean:true | name=double:1.5, --group KEY (JMSXGroupID),
 *         --type T (JMSType), --correlation-id C, --non-persistent
 *         (non-ASCII text in plain arguments depends on the JVM's locale: use the *base64 forms)
 * common  --url tcp://127.0.0.1:61616 (or env JMS_URL), credentials from env JMS_USER / JMS_PASSWORD
 * </pre>
 *
 * Output: one JSON object per line on stdout (received or sent message); diagnostics on stderr.
 * Exit codes: 0 done, 3 consume timed out with fewer than --count messages, 2 bad arguments, 1 error.
 */
public final class JmsInterop {

  public static void main(String[] args) {
    if (args.length == 0) usage("missing mode (consume|send)");
    String mode = args[0];
    try {
      switch (mode) {
        case "consume":
          System.exit(consume(args));
          break;
        case "send":
          System.exit(send(args));
          break;
        default:
          usage("unknown mode " + mode);
      }
    } catch (JMSException e) {
      // Never print credentials: the exception text carries the broker's reason only.
      System.err.println("jms error: " + e.getClass().getSimpleName() + ": " + e.getMessage());
      System.exit(1);
    }
  }

  private static void usage(String why) {
    System.err.println("JmsInterop: " + why);
    System.err.println("usage: consume (--queue Q | --group G --topic T) --count N [--timeout-ms MS] [--rollback-first]");
    System.err.println("       send (--topic T | --queue Q) (--text S | --text-base64 B | --bytes-base64 B) [--prop n=type:v]... [--group K] [--type T] [--correlation-id C] [--non-persistent] ...");
    System.exit(2);
  }

  private static String arg(String[] args, String name, String fallback) {
    for (int i = 1; i < args.length - 1; i++) if (args[i].equals(name)) return args[i + 1];
    return fallback;
  }

  private static boolean flag(String[] args, String name) {
    for (int i = 1; i < args.length; i++) if (args[i].equals(name)) return true;
    return false;
  }

  private static Connection open(String[] args) throws JMSException {
    String url = arg(args, "--url", envOr("JMS_URL", "tcp://127.0.0.1:61616"));
    ActiveMQConnectionFactory factory = new ActiveMQConnectionFactory(url);
    String user = System.getenv("JMS_USER");
    String password = System.getenv("JMS_PASSWORD");
    if (user != null && !user.isEmpty()) {
      factory.setUserName(user);
      factory.setPassword(password);
    }
    factory.setWatchTopicAdvisories(false);
    Connection connection = factory.createConnection();
    connection.start();
    return connection;
  }

  private static String envOr(String name, String fallback) {
    String v = System.getenv(name);
    return v == null || v.isEmpty() ? fallback : v;
  }

  // --------------------------------------------------------------------------------------------
  private static int consume(String[] args) throws JMSException {
    String queue = arg(args, "--queue", null);
    if (queue == null) {
      String group = arg(args, "--group", null);
      String topic = arg(args, "--topic", null);
      if (group == null || topic == null) usage("consume needs --queue, or --group and --topic");
      queue = "Consumer." + group + ".VirtualTopic." + topic;
    }
    int count = Integer.parseInt(arg(args, "--count", "1"));
    long timeoutMs = Long.parseLong(arg(args, "--timeout-ms", "10000"));
    boolean rollbackFirst = flag(args, "--rollback-first");
    long deadline = System.currentTimeMillis() + timeoutMs;
    Connection connection = open(args);
    try {
      Session session = rollbackFirst
          ? connection.createSession(true, Session.SESSION_TRANSACTED)
          : connection.createSession(false, Session.CLIENT_ACKNOWLEDGE);
      MessageConsumer consumer = session.createConsumer(session.createQueue(queue));
      List<String> rolledBack = new ArrayList<>();
      int received = 0;
      while (received < count) {
        long left = deadline - System.currentTimeMillis();
        if (left <= 0) break;
        Message m = consumer.receive(left);
        if (m == null) break;
        if (rollbackFirst && !rolledBack.contains(m.getJMSMessageID())) {
          rolledBack.add(m.getJMSMessageID());
          System.out.println(describe(m, "rolled-back"));
          session.rollback();
          continue;
        }
        System.out.println(describe(m, "received"));
        if (rollbackFirst) session.commit();
        else m.acknowledge();
        received++;
      }
      System.out.flush();
      if (received < count) {
        System.err.println("consume: got " + received + " of " + count + " from " + queue + " in " + timeoutMs + " ms");
        return 3;
      }
      return 0;
    } finally {
      connection.close();
    }
  }

  private static String describe(Message m, String event) throws JMSException {
    Map<String, Object> out = new TreeMap<>();
    out.put("event", event);
    out.put("JMSMessageID", m.getJMSMessageID());
    out.put("JMSDestination", String.valueOf(m.getJMSDestination()));
    out.put("JMSRedelivered", m.getJMSRedelivered());
    out.put("JMSDeliveryMode", m.getJMSDeliveryMode() == DeliveryMode.PERSISTENT ? "PERSISTENT" : "NON_PERSISTENT");
    out.put("JMSPriority", m.getJMSPriority());
    out.put("JMSTimestamp", m.getJMSTimestamp());
    out.put("JMSExpiration", m.getJMSExpiration());
    out.put("JMSType", m.getJMSType());
    out.put("JMSCorrelationID", m.getJMSCorrelationID());
    out.put("JMSReplyTo", m.getJMSReplyTo() == null ? null : String.valueOf(m.getJMSReplyTo()));
    // JMSX* are not in getPropertyNames(): ask for them by name.
    out.put("JMSXDeliveryCount", m.getObjectProperty("JMSXDeliveryCount"));
    out.put("JMSXGroupID", m.getObjectProperty("JMSXGroupID"));
    out.put("JMSXGroupSeq", m.getObjectProperty("JMSXGroupSeq"));
    Map<String, Object> props = new TreeMap<>();
    Map<String, String> types = new TreeMap<>();
    for (Enumeration<?> e = m.getPropertyNames(); e.hasMoreElements(); ) {
      String name = (String) e.nextElement();
      Object v = m.getObjectProperty(name);
      props.put(name, v);
      types.put(name, v == null ? "null" : v.getClass().getSimpleName());
    }
    out.put("properties", props);
    out.put("propertyTypes", types);
    if (m instanceof BytesMessage) {
      BytesMessage b = (BytesMessage) m;
      byte[] body = new byte[(int) b.getBodyLength()];
      b.readBytes(body);
      out.put("type", "bytes");
      out.put("bodyBase64", Base64.getEncoder().encodeToString(body));
      out.put("bodyLength", body.length);
    } else if (m instanceof TextMessage) {
      out.put("type", "text");
      try {
        String text = ((TextMessage) m).getText();
        byte[] utf8 = text == null ? new byte[0] : text.getBytes(StandardCharsets.UTF_8);
        out.put("bodyBase64", Base64.getEncoder().encodeToString(utf8));
        out.put("bodyLength", utf8.length);
        out.put("text", text);
      } catch (JMSException ex) {
        // e.g. UTFDataFormatException for a STOMP text frame with characters beyond U+FFFF
        Throwable cause = ex.getCause() != null ? ex.getCause() : ex;
        out.put("textError", cause.getClass().getSimpleName() + ": " + cause.getMessage());
      }
    } else if (m instanceof MapMessage) {
      out.put("type", "map");
    } else if (m instanceof ObjectMessage) {
      out.put("type", "object");
    } else if (m instanceof StreamMessage) {
      out.put("type", "stream");
    } else {
      out.put("type", "message");
    }
    return json(out);
  }

  // --------------------------------------------------------------------------------------------
  private static final class Outgoing {
    String kind;
    byte[] body;
    String text;
    final Map<String, Object> props = new TreeMap<>();
    String group;
    String type;
    String correlationId;
    boolean persistent = true;
  }

  private static int send(String[] args) throws JMSException {
    String topic = arg(args, "--topic", null);
    String queue = arg(args, "--queue", null);
    if ((topic == null) == (queue == null)) usage("send needs exactly one of --topic (msgkit topic) or --queue");
    List<Outgoing> messages = new ArrayList<>();
    Outgoing cur = null;
    for (int i = 1; i < args.length; i++) {
      String a = args[i];
      boolean hasValue = i + 1 < args.length;
      switch (a) {
        case "--text":
        case "--text-base64":
        case "--bytes-base64":
          if (!hasValue) usage(a + " needs a value");
          cur = new Outgoing();
          messages.add(cur);
          String v = args[++i];
          if (a.equals("--text")) {
            cur.kind = "text";
            cur.text = v;
          } else if (a.equals("--text-base64")) {
            cur.kind = "text";
            cur.text = new String(Base64.getDecoder().decode(v), StandardCharsets.UTF_8);
          } else {
            cur.kind = "bytes";
            cur.body = Base64.getDecoder().decode(v);
          }
          break;
        case "--prop":
          if (cur == null || !hasValue) usage("--prop comes after --text/--bytes-base64 and needs name=type:value");
          String spec = args[++i];
          int eq = spec.indexOf('=');
          int colon = spec.indexOf(':', eq + 1);
          if (eq <= 0 || colon < 0) usage("bad --prop " + spec + " (want name=type:value)");
          cur.props.put(spec.substring(0, eq), typed(spec.substring(eq + 1, colon), spec.substring(colon + 1)));
          break;
        case "--group":
        case "--type":
        case "--correlation-id":
          if (cur == null || !hasValue) usage(a + " comes after --text/--bytes-base64 and needs a value");
          String val = args[++i];
          if (a.equals("--group")) cur.group = val;
          else if (a.equals("--type")) cur.type = val;
          else cur.correlationId = val;
          break;
        case "--non-persistent":
          if (cur == null) usage("--non-persistent comes after --text/--bytes-base64");
          cur.persistent = false;
          break;
        case "--topic":
        case "--queue":
        case "--url":
          i++;
          break;
        default:
          usage("unknown option " + a);
      }
    }
    if (messages.isEmpty()) usage("send needs at least one --text or --bytes-base64");
    Connection connection = open(args);
    try {
      Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
      javax.jms.Destination dest =
          topic != null ? session.createTopic("VirtualTopic." + topic) : session.createQueue(queue);
      MessageProducer producer = session.createProducer(dest);
      for (Outgoing o : messages) {
        Message m;
        if (o.kind.equals("text")) {
          m = session.createTextMessage(o.text);
        } else {
          BytesMessage b = session.createBytesMessage();
          b.writeBytes(o.body);
          m = b;
        }
        for (Map.Entry<String, Object> p : o.props.entrySet()) m.setObjectProperty(p.getKey(), p.getValue());
        if (o.group != null) m.setStringProperty("JMSXGroupID", o.group);
        if (o.type != null) m.setJMSType(o.type);
        if (o.correlationId != null) m.setJMSCorrelationID(o.correlationId);
        producer.send(m, o.persistent ? DeliveryMode.PERSISTENT : DeliveryMode.NON_PERSISTENT,
            Message.DEFAULT_PRIORITY, Message.DEFAULT_TIME_TO_LIVE);
        Map<String, Object> out = new TreeMap<>();
        out.put("event", "sent");
        out.put("type", o.kind);
        out.put("JMSMessageID", m.getJMSMessageID());
        out.put("JMSDestination", String.valueOf(dest));
        System.out.println(json(out));
      }
      System.out.flush();
      return 0;
    } finally {
      connection.close();
    }
  }

  private static Object typed(String type, String value) {
    switch (type) {
      case "string":
        return value;
      case "string64":
        return new String(Base64.getDecoder().decode(value), StandardCharsets.UTF_8);
      case "int":
        return Integer.valueOf(value);
      case "long":
        return Long.valueOf(value);
      case "boolean":
        return Boolean.valueOf(value);
      case "double":
        return Double.valueOf(value);
      default:
        usage("unknown property type " + type + " (string|string64|int|long|boolean|double)");
        return null;
    }
  }

  // --------------------------------------------------------------------------------------------
  // A small JSON writer (no library on the classpath): maps, lists, strings, numbers, booleans, null.
  private static String json(Object v) {
    StringBuilder sb = new StringBuilder();
    write(sb, v);
    return sb.toString();
  }

  private static void write(StringBuilder sb, Object v) {
    if (v == null) {
      sb.append("null");
    } else if (v instanceof Map) {
      sb.append('{');
      boolean first = true;
      for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
        if (!first) sb.append(',');
        first = false;
        writeString(sb, String.valueOf(e.getKey()));
        sb.append(':');
        write(sb, e.getValue());
      }
      sb.append('}');
    } else if (v instanceof List) {
      sb.append('[');
      boolean first = true;
      for (Object o : (List<?>) v) {
        if (!first) sb.append(',');
        first = false;
        write(sb, o);
      }
      sb.append(']');
    } else if (v instanceof Boolean || v instanceof Integer || v instanceof Long || v instanceof Short
        || v instanceof Byte) {
      sb.append(v);
    } else if (v instanceof Double || v instanceof Float) {
      double d = ((Number) v).doubleValue();
      if (Double.isFinite(d)) sb.append(v);
      else writeString(sb, String.valueOf(v));
    } else {
      writeString(sb, String.valueOf(v));
    }
  }

  private static void writeString(StringBuilder sb, String s) {
    sb.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"':
          sb.append("\\\"");
          break;
        case '\\':
          sb.append("\\\\");
          break;
        case '\n':
          sb.append("\\n");
          break;
        case '\r':
          sb.append("\\r");
          break;
        case '\t':
          sb.append("\\t");
          break;
        default:
          // Escape all non-ASCII as \\uXXXX: stdout stays ASCII whatever the JVM's default charset,
          // and lone surrogates (from a CESU-8 decode) stay visible instead of turning into '?'.
          if (c < 0x20 || c > 0x7e) sb.append(String.format("\\u%04x", (int) c));
          else sb.append(c);
      }
    }
    sb.append('"');
  }

  private JmsInterop() {}
}
