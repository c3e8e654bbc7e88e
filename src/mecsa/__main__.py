from mecsa.command import main

main()
