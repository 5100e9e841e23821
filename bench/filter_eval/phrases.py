"""Template phrases for the generated junk that imitates web chrome and spam. Each pool is cut in
two by a hash of the phrase (`for_split`), so the test pages are built from phrases the dev pages
never used: a rule that memorises dev's cookie banner gains nothing on test."""

from __future__ import annotations

from bench.filter_eval.common import stable_hash

# fmt: off
NAV = [
    "Home", "About", "About Us", "Contact", "Contact Us", "Blog", "News", "Shop", "Store", "Cart",
    "My Account", "Log in", "Sign up", "Register", "FAQ", "Help", "Support", "Careers", "Jobs",
    "Press", "Events", "Services", "Products", "Pricing", "Features", "Resources", "Downloads",
    "Gallery", "Portfolio", "Team", "Partners", "Locations", "Store Locator", "Gift Cards", "Sale",
    "New Arrivals", "Wishlist", "Checkout", "Track Order", "Returns", "Shipping", "Sitemap",
    "Subscribe", "Donate", "Community", "Forums", "Newsletter", "Search", "Menu", "Categories",
    "Archives", "Tags", "Authors", "Videos", "Podcasts", "Documentation", "Status", "Investors",
]
FOOTER = [
    "All rights reserved.", "Privacy Policy", "Terms of Use", "Terms and Conditions", "Cookie Policy",
    "Accessibility", "Do Not Sell My Personal Information", "Legal Notice", "Imprint", "Disclaimer",
    "Powered by WordPress", "Designed by {site} Studio", "Back to top", "Site map", "RSS Feed",
    "Follow us on Facebook", "Follow us on Twitter", "Follow us on Instagram", "Find us on YouTube",
    "Made with love in {city}", "Proudly powered by WordPress | Theme: {site} by {site}Themes.",
    "Copyright {year} {site}. All rights reserved.", "© {year} {site} Inc. All Rights Reserved.",
    "{site} is a registered trademark of {site} Holdings LLC.", "Version {n}.{n}", "Report abuse",
    "Your use of this site constitutes acceptance of our User Agreement.", "Manage preferences",
]
COOKIE = [
    "We use cookies to improve your experience on our website.",
    "By continuing to browse, you agree to our use of cookies.",
    "This website uses cookies to ensure you get the best experience on our website.",
    "We and our partners use cookies and similar technologies to personalise content and ads.",
    "By clicking “Accept All”, you consent to the use of ALL the cookies.",
    "Cookies help us deliver our services. By using our services, you agree to our use of cookies.",
    "This site uses cookies for analytics and personalized content. Learn more in our Cookie Policy.",
    "We value your privacy. We use cookies to enhance your browsing experience and analyze our traffic.",
    "Your browser is out of date. Please update your browser for the best experience.",
    "Please enable JavaScript to view this page.",
    "You need to enable JavaScript to run this app.",
    "Accept", "Accept All", "Reject All", "Decline", "Customize", "Cookie Settings", "Got it!",
    "Learn more", "Necessary cookies are absolutely essential for the website to function properly.",
    "Some features may not work correctly if you disable cookies.",
]
ACCOUNT = [
    "Sign in to your account", "Username", "Email address", "Password", "Forgot your password?",
    "Remember me", "Don't have an account? Sign up", "Already a member? Log in", "Create account",
    "Continue with Google", "Continue with Facebook", "Or sign in with email", "Reset password",
    "Enter your email to receive a reset link.", "Invalid username or password.", "Log out",
    "You must be logged in to post a comment.", "Welcome back!", "Keep me signed in",
]
WIDGETS = [
    "Subscribe to our newsletter", "Enter your email address",
    "Sign up for our newsletter and get 10% off your first order.",
    "Share this:", "Share on Facebook", "Share on Twitter", "Pin it", "Email this", "Print",
    "Leave a comment", "Leave a Reply", "Cancel reply", "Your email address will not be published.",
    "Required fields are marked *", "Post Comment", "Related Posts", "You may also like", "Read more",
    "Load more", "Previous post", "Next post", "Posted in Uncategorized", "Tagged", "0 Comments",
    "Search for:", "Search …", "Skip to content", "Toggle navigation", "Close menu", "Loading...",
    "Add to cart", "Quick view", "Out of stock", "Free shipping on orders over $50", "View cart",
    "Chat with us", "Call us: {phone}", "Open Monday to Friday, 9am to 5pm", "Write a review",
]
STUBS = [
    "Page not found", "404 Not Found", "Coming soon!", "Under construction", "Loading...", "Untitled",
    "Hello world!", "test", "Access denied", "Forbidden", "Internal Server Error", "Redirecting...",
    "Click here", "Thanks for visiting!", "This page intentionally left blank.", "No results found.",
    "Welcome to nginx!", "It works!", "Index of /", "Moved Permanently", "Service Unavailable",
    "Please wait...", "Login required", "Sorry, nothing here.", "Lorem ipsum dolor sit amet.",
]
SPAM_MODIFIERS = [
    "best", "cheap", "cheapest", "top", "top 10", "buy", "discount", "free", "online", "near me",
    "for sale", "reviews", "deals", "coupon", "promo code", "2024", "2023", "official", "wholesale",
    "affordable", "professional", "certified", "fast", "same day", "luxury", "original", "new",
    "low cost", "price", "prices", "order", "shop", "store", "best price", "guaranteed",
]
SPAM_TEMPLATES = [
    "Looking for {kw}? We offer the best {kw} in {city}.",
    "Our {kw} is the number one {kw} for {kw2}.",
    "Buy {kw} online today and save on {kw2}!",
    "{KW} - {KW2} - {KW} {city}",
    "Get {kw} at the lowest price. {KW}, {kw2}, {kw} deals.",
    "Why choose our {kw}? Because our {kw} is cheaper than any other {kw}.",
    "Click here for {kw} {city} and {kw2} {city}.",
    "{kw} {kw2} {kw} {kw2} {kw}",
    "Best {kw} reviews, cheap {kw}, {kw} for sale, {kw} near me.",
    "We are the leading {kw} provider. Call now for {kw2}!",
    "Top rated {kw} | {kw2} | {kw} {year}",
    "Find {kw}, compare {kw2} and order {kw} with free delivery.",
]
PRODUCTS = [
    "hotels", "car insurance", "payday loans", "weight loss pills", "phone cases", "running shoes",
    "web hosting", "seo services", "plumber", "dentist", "divorce lawyer", "locksmith", "used cars",
    "wedding dresses", "cbd oil", "vpn", "forex trading", "crypto wallet", "roofing contractor",
    "essay writing service", "replica watches", "sunglasses", "diet supplements", "air conditioner repair",
    "moving company", "flights", "casino bonus", "home loans", "hair extensions", "gaming laptop",
    "wireless earbuds", "dog food", "carpet cleaning", "solar panels", "kitchen cabinets", "printer ink",
    "follower packages", "backlinks", "protein powder", "mattress", "life insurance", "pest control",
]
CITIES = [
    "London", "New York", "Los Angeles", "Chicago", "Houston", "Toronto", "Sydney", "Melbourne",
    "Dublin", "Manchester", "Dallas", "Miami", "Boston", "Seattle", "Denver", "Atlanta", "Phoenix",
    "Vancouver", "Auckland", "Birmingham", "Leeds", "Glasgow", "San Diego", "Austin", "Orlando",
    "Las Vegas", "Portland", "Calgary", "Brisbane", "Perth", "Cape Town", "Singapore", "Mumbai",
]
TLDS = ["com", "net", "org", "info", "biz", "co.uk", "io", "xyz", "online", "site", "top", "us", "de", "ru"]
LOG_EVENTS = [
    "rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "errors", "dropped", "latency_ms", "qps",
    "cpu_pct", "mem_mb", "disk_io", "conn_open", "conn_closed", "retries", "cache_hits", "cache_miss",
]
# fmt: on


def for_split(pool: list[str], split: str) -> list[str]:
    """The half of `pool` that `split` may use (dev: even hashes, test: odd)."""
    side = 0 if split == "dev" else 1
    half = [p for p in pool if stable_hash("phrase", p) % 2 == side]
    return half or pool
