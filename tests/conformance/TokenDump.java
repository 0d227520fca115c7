import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.standard.StandardAnalyzer;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;

/**
 * Reads one JSON string per line on stdin and prints, per line, the JSON array
 * of tokens Lucene's StandardAnalyzer (no stopwords, as ES's "standard"
 * analyzer) produces for it. Used by generate.py to record tokenizer fixtures
 * and to measure the character tables of elastic_recheck/core/lucene/_unicode_tables.py.
 */
public class TokenDump {
    public static void main(String[] args) throws Exception {
        ObjectMapper json = new ObjectMapper();
        Analyzer analyzer = new StandardAnalyzer(CharArraySet.EMPTY_SET);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8), 1 << 16);
        PrintWriter out = new PrintWriter(new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8), 1 << 16));
        String line;
        while ((line = in.readLine()) != null) {
            String text = json.readTree(line).asText();
            ArrayNode tokens = json.createArrayNode();
            try (TokenStream ts = analyzer.tokenStream("message", text)) {
                CharTermAttribute term = ts.addAttribute(CharTermAttribute.class);
                ts.reset();
                while (ts.incrementToken()) {
                    tokens.add(term.toString());
                }
                ts.end();
            }
            out.println(json.writeValueAsString(tokens));
        }
        out.flush();
    }
}
